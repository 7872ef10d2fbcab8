/**
 * What a browser can be made to do (docs/security.md, guarantee 5): a state-changing request authenticated only by
 * the `authorization` cookie must be same-origin, /_/v0/config never hands a cookie's token to
 * another site, RPCs ignore cookies, and user content is served so it cannot script the API
 * origin (nosniff, CSP sandbox, active types as downloads unless the host opts in).
 */
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { Files, Tenants, VHosts } from "@cacheroach/proto";
import pg from "pg";
import { startTestServer, type TestServer } from "../src/testing.js";

let ts: TestServer;
let db: pg.Client;
let tenant: string;
let cookie: string;
let bearer: string;
const EVIL = "https://evil.example";

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** One request with exactly the given headers (plus Host, which node:http adds), via node:http. */
function send(method: string, path: string, headers: Record<string, string> = {}, body?: string) {
  const u = new URL(ts.url);
  return new Promise<Answer>((resolve, reject) => {
    const r = http.request({ host: u.hostname, port: u.port, path, method, agent: false, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, text }));
    });
    r.on("error", reject);
    r.end(body);
  });
}

/** Versions ever written at `path` in the test tenant (0: the refusal stored nothing). */
async function versions(path: string): Promise<number> {
  const r = await db.query<{ n: string }>(
    "SELECT count(*) AS n FROM file_versions WHERE tenant_id = $1 AND path = $2",
    [tenant, Buffer.from(path)],
  );
  return Number(r.rows[0]!.n);
}

before(async () => {
  ts = await startTestServer({ activeContentHosts: ["inline.test"] });
  db = new pg.Client({ connectionString: ts.databaseUrl });
  await db.connect();
  tenant = (await ts.client(Tenants, ts.superToken).ensure({ tenant: { label: "browser" } })).tenant!.id;
  for (const vhost of ["127.0.0.1", "inline.test"])
    await ts.client(VHosts, ts.superToken).ensure({ vhost: { vhost, tenantId: tenant } });
  cookie = `authorization=${ts.superToken}`;
  bearer = `Bearer ${ts.superToken}`;
});
after(async () => {
  await db?.end();
  await ts?.close();
});

describe("cookie-authenticated writes are same-origin only", () => {
  const form = { "content-type": "application/x-www-form-urlencoded" };
  const multipart = { "content-type": "multipart/form-data; boundary=XyZ" };
  const plain = { "content-type": "text/plain" };
  const multipartBody =
    '--XyZ\r\ncontent-disposition: form-data; name="a"\r\n\r\n<script>1</script>\r\n--XyZ--\r\n';
  const crossSite: { name: string; method: string; headers: Record<string, string>; body?: string }[] = [
    {
      name: "form POST (urlencoded), no Origin or Sec-Fetch-Site",
      method: "POST",
      headers: form,
      body: "a=1",
    },
    {
      name: "form POST (multipart) with another site's Origin",
      method: "POST",
      headers: { ...multipart, origin: EVIL },
      body: multipartBody,
    },
    {
      name: "form POST (text/plain), Sec-Fetch-Site cross-site",
      method: "POST",
      headers: { ...plain, origin: EVIL, "sec-fetch-site": "cross-site" },
      body: "<html><script>steal()</script>",
    },
    {
      name: "form POST from a sibling origin of the same site (Sec-Fetch-Site same-site)",
      method: "POST",
      headers: { ...form, "sec-fetch-site": "same-site" },
      body: "a=1",
    },
    {
      name: "Sec-Fetch-Site cross-site wins over an Origin that looks like ours",
      method: "POST",
      headers: { ...form, "sec-fetch-site": "cross-site", origin: "ORIGIN" },
      body: "a=1",
    },
    {
      name: "Origin null (a sandboxed page)",
      method: "POST",
      headers: { ...plain, origin: "null" },
      body: "x",
    },
    {
      name: "Origin of the same host on another port",
      method: "POST",
      headers: { ...form, origin: "http://127.0.0.1:1" },
      body: "x",
    },
    {
      name: "Origin https of this host (no https public URL configured)",
      method: "PUT",
      headers: { origin: "HTTPS_ORIGIN" },
      body: "x",
    },
    {
      name: "fetch PUT from another site",
      method: "PUT",
      headers: { origin: EVIL, "sec-fetch-site": "cross-site" },
      body: "x",
    },
    { name: "PUT with neither Origin nor Sec-Fetch-Site", method: "PUT", headers: {}, body: "x" },
    {
      name: "PATCH (any other method counts as a write)",
      method: "PATCH",
      headers: { origin: EVIL },
      body: "x",
    },
  ];
  crossSite.forEach((c, i) => {
    test(`refused, nothing written: ${c.name}`, async () => {
      const path = `/xs/case-${i}.html`;
      const headers: Record<string, string> = { ...c.headers, cookie };
      if (headers["origin"] === "ORIGIN") headers["origin"] = ts.url;
      if (headers["origin"] === "HTTPS_ORIGIN") headers["origin"] = ts.url.replace("http:", "https:");
      const r = await send(c.method, path, headers, c.body);
      assert.equal(r.status, 403, r.text);
      assert.match(r.text, new RegExp(`a ${c.method} authenticated only by cookie is refused: .+Bearer`));
      assert.equal(await versions(path), 0);
    });
  });

  test("a cross-site DELETE by cookie is refused and the file stays", async () => {
    assert.equal((await send("PUT", "/xs/keep.txt", { authorization: bearer }, "keep")).status, 201);
    const variants: Record<string, string>[] = [
      {},
      { origin: EVIL },
      { "sec-fetch-site": "cross-site" },
      { "sec-fetch-site": "same-site" },
    ];
    for (const h of variants) {
      const r = await send("DELETE", "/xs/keep.txt", { ...h, cookie });
      assert.equal(r.status, 403, r.text);
      assert.match(r.text, /a DELETE authenticated only by cookie is refused/);
    }
    const still = await send("GET", "/xs/keep.txt", { authorization: bearer });
    assert.equal(still.status, 200);
    assert.equal(still.text, "keep");
  });

  test("same-origin cookie writes work: Sec-Fetch-Site same-origin or none, or our own Origin", async () => {
    let r = await send("PUT", "/so/a.txt", { cookie, "sec-fetch-site": "same-origin" }, "a");
    assert.equal(r.status, 201, r.text);
    r = await send("POST", "/so/b.txt", { cookie, origin: ts.url, ...{ "content-type": "text/plain" } }, "b");
    assert.equal(r.status, 201, r.text);
    r = await send("PUT", "/so/c.txt", { cookie, "sec-fetch-site": "none" }, "c");
    assert.equal(r.status, 201, r.text);
    r = await send("DELETE", "/so/a.txt", { cookie, "sec-fetch-site": "same-origin" });
    assert.equal(r.status, 204, r.text);
    assert.equal(await versions("/so/b.txt"), 1);
  });

  test("bearer-header writes are unaffected by Origin and Sec-Fetch-Site", async () => {
    const h = { authorization: bearer, origin: EVIL, "sec-fetch-site": "cross-site", cookie };
    assert.equal((await send("PUT", "/br/x.txt", h, "x")).status, 201);
    assert.equal((await send("POST", "/br/y.txt", h, "y")).status, 201);
    assert.equal((await send("DELETE", "/br/x.txt", h)).status, 204);
  });

  test("cookie reads stay allowed cross-site (cookies authenticate reads)", async () => {
    await send("PUT", "/rd/r.txt", { authorization: bearer }, "read me");
    const r = await send("GET", "/rd/r.txt", { cookie, "sec-fetch-site": "cross-site", origin: EVIL });
    assert.equal(r.status, 200);
    assert.equal(r.text, "read me");
  });

  test("a malformed cookie is a 400 naming it, other malformed cookies are ignored: never a 500", async () => {
    await send("PUT", "/mc/m.txt", { authorization: bearer }, "m");
    const bad = await send("GET", "/mc/m.txt", { cookie: "authorization=%E0%A4%A" });
    assert.deepEqual([bad.status, bad.headers["cacheroach-error-code"]], [400, "ERR_BAD_REQUEST"]);
    assert.match(bad.text, /the authorization cookie is not valid percent-encoding/);
    const others = await send("GET", "/mc/m.txt", { cookie: `x=%E0%A4%A; ;;=; =y; ${cookie}; z` });
    assert.deepEqual([others.status, others.text], [200, "m"]);
    // No usable cookie at all: an anonymous request (this tenant is private).
    const garbage = await send("GET", "/mc/m.txt", { cookie: ";;=;authorization;\t" });
    assert.equal(garbage.status, 401);
  });

  test("RPCs never honour the cookie, same-origin or not", async () => {
    const json = { "content-type": "application/json", "connect-protocol-version": "1" };
    const begin = JSON.stringify({ tenantId: tenant, path: "/rpc/by-cookie", contents: "aGk=" });
    const variants: Record<string, string>[] = [{ "sec-fetch-site": "same-origin" }, { origin: ts.url }, {}];
    for (const extra of variants) {
      const r = await send("POST", "/cacheroach.v1.Uploads/Begin", { ...json, ...extra, cookie }, begin);
      assert.equal(r.status, 401, r.text);
      assert.match(r.text, /not logged in/);
      const t = await send(
        "POST",
        "/cacheroach.v1.Tenants/Ensure",
        { ...json, ...extra, cookie },
        '{"tenant":{"label":"c"}}',
      );
      assert.equal(t.status, 401, t.text);
    }
    assert.equal(await versions("/rpc/by-cookie"), 0);
    // A cross-site form aimed at an RPC path is not an RPC and is not stored as a file either.
    const f = await send(
      "POST",
      "/cacheroach.v1.Uploads/Begin",
      { "content-type": "text/plain", cookie },
      begin,
    );
    assert.ok(f.status >= 400, `${f.status} ${f.text}`);
    assert.equal(await versions("/cacheroach.v1.Uploads/Begin"), 0);
  });
});

describe("/_/v0/config hands a cookie's token to same-origin requests only", () => {
  test("cross-site or unlabelled cookie requests are refused without the token", async () => {
    const variants: Record<string, string>[] = [
      {},
      { "sec-fetch-site": "cross-site" },
      { "sec-fetch-site": "same-site" },
      { origin: EVIL },
      { origin: "null" },
    ];
    for (const h of variants) {
      const r = await send("GET", "/_/v0/config", { ...h, cookie });
      assert.equal(r.status, 403, `${JSON.stringify(h)}: ${r.text}`);
      assert.match(r.text, /a configuration download by cookie is refused/);
      assert.ok(!r.text.includes(ts.superToken), "the token must not leak");
    }
  });

  test("same-origin cookie requests, and any bearer or access_token request, get it", async () => {
    const variants: Record<string, string>[] = [
      { "sec-fetch-site": "same-origin" },
      { "sec-fetch-site": "none" },
      { origin: ts.url },
    ];
    for (const h of variants) {
      const r = await send("GET", "/_/v0/config", { ...h, cookie });
      assert.equal(r.status, 200, `${JSON.stringify(h)}: ${r.text}`);
      assert.equal((JSON.parse(r.text) as { token: string }).token, ts.superToken);
    }
    const b = await send("GET", "/_/v0/config", { authorization: bearer, "sec-fetch-site": "cross-site" });
    assert.equal(b.status, 200);
    const q = await send("GET", `/_/v0/config?access_token=${ts.superToken}`, {
      "sec-fetch-site": "cross-site",
    });
    assert.equal(q.status, 200);
  });

  test("a cookie that is not valid percent-encoding is 400, not 500", async () => {
    for (const path of ["/_/v0/config", "/rd/r.txt"]) {
      const r = await send("GET", path, { cookie: "theme=dark; authorization=%E0%A4%A" });
      assert.equal(r.status, 400, `${path}: ${r.text}`);
      assert.match(r.text, /authorization cookie is not valid percent-encoding/);
    }
    // Other cookies are never decoded, so their syntax cannot break a request.
    const ok = await send("GET", "/rd/r.txt", { cookie: `junk=%E0%A4%A; ${cookie}` });
    assert.equal(ok.status, 200, ok.text);
  });
});

describe("user content cannot script the API origin", () => {
  const files: { path: string; body: string; type?: string; active: boolean }[] = [
    { path: "/uc/page.html", body: "<script>fetch('/_/v0/config')</script>", active: true },
    {
      path: "/uc/pic.svg",
      body: '<svg xmlns="http://www.w3.org/2000/svg"><script>1</script></svg>',
      active: true,
    },
    { path: "/uc/data.xml", body: "<?xml version='1.0'?><a/>", active: true },
    { path: "/uc/app.js", body: "alert(1)", active: true },
    { path: "/uc/typed.txt", body: "<b>typed</b>", type: "text/html; charset=utf-8", active: true },
    { path: "/uc/page.xhtml", body: "<html/>", type: "application/xhtml+xml", active: true },
    { path: "/uc/feed", body: "<rss/>", type: "application/rss+xml", active: true },
    { path: "/uc/sniffed", body: "<html><script>alert(1)</script></html>", active: true },
    { path: "/uc/notes.txt", body: "just text", active: false },
    { path: "/uc/data.json", body: "{}", active: false },
  ];
  before(async () => {
    for (const f of files) {
      const h: Record<string, string> = { authorization: bearer };
      if (f.type) h["content-type"] = f.type;
      assert.equal((await send("PUT", f.path, h, f.body)).status, 201);
    }
    await send("PUT", "/site/index.html", { authorization: bearer }, "<h1>home</h1>");
  });

  test("every file response has nosniff and CSP sandbox; active types are downloads", async () => {
    for (const f of files) {
      for (const method of ["GET", "HEAD"]) {
        const r = await send(method, f.path, { authorization: bearer });
        assert.equal(r.status, 200, f.path);
        assert.equal(r.headers["x-content-type-options"], "nosniff", f.path);
        assert.equal(r.headers["content-security-policy"], "sandbox", f.path);
        if (f.active)
          assert.match(
            r.headers["content-disposition"] ?? "",
            /^attachment; filename=/,
            `${method} ${f.path}`,
          );
        else assert.equal(r.headers["content-disposition"], undefined, f.path);
      }
    }
    const part = await send("GET", "/uc/page.html", { authorization: bearer, range: "bytes=0-3" });
    assert.equal(part.status, 206);
    assert.match(part.headers["content-disposition"] ?? "", /^attachment/);
    assert.equal(part.headers["content-security-policy"], "sandbox");
    const old = await send("GET", "/uc/page.html?version=1", { authorization: bearer });
    assert.match(old.headers["content-disposition"] ?? "", /^attachment/);
  });

  test("directory index pages and generated listings are sandboxed too", async () => {
    const index = await send("GET", "/site/", { authorization: bearer });
    assert.equal(index.status, 200);
    assert.match(index.headers["content-disposition"] ?? "", /^attachment; filename="index.html"/);
    assert.equal(index.headers["content-security-policy"], "sandbox");
    const listing = await send("GET", "/uc/", { authorization: bearer });
    assert.equal(listing.status, 200);
    assert.match(listing.headers["content-type"] ?? "", /^text\/html/);
    assert.equal(listing.headers["content-security-policy"], "sandbox");
    assert.equal(listing.headers["x-content-type-options"], "nosniff");
  });

  test("signed-URL downloads are sandboxed", async () => {
    const url = await ts.client(Files, ts.superToken).retrieve({ tenantId: tenant, path: "/uc/page.html" });
    const r = await send("GET", url.getUri);
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-security-policy"], "sandbox");
    assert.equal(r.headers["x-content-type-options"], "nosniff");
    assert.match(r.headers["content-disposition"] ?? "", /^attachment/);
  });

  test("an opted-in host shows active content inline, scripts confined to an opaque origin", async () => {
    const r = await send("GET", "/uc/page.html", { authorization: bearer, host: "inline.test" });
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-disposition"], undefined);
    const csp = String(r.headers["content-security-policy"] ?? "");
    assert.match(csp, /^sandbox allow-scripts/);
    assert.ok(!csp.includes("allow-same-origin") && !csp.includes("allow-top-navigation"), csp);
    assert.equal(r.headers["x-content-type-options"], "nosniff");
    const text = await send("GET", "/uc/notes.txt", { authorization: bearer, host: "INLINE.test:80" });
    assert.equal(text.headers["content-security-policy"], "sandbox");
  });
});
