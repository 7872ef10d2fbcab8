/**
 * How the server serves the built web UI at /_/ui/ (no browser needed): the redirect, a strict
 * Content-Security-Policy and the other security headers, index.html revalidated and the
 * content-hashed assets immutable, precompressed copies, 304s, refusals, and the size budget of a
 * first load (under 200 KB compressed).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, test } from "node:test";
import { gunzipSync } from "node:zlib";
import { startTestServer, type TestServer } from "@cacheroach/server/testing";

const DIST = path.resolve(import.meta.dirname, "../dist/ui");
let s: TestServer;

before(async () => {
  s = await startTestServer();
});
after(async () => {
  await s?.close();
});

/** The assets index.html names. */
function assetsOf(html: string): string[] {
  return [...html.matchAll(/(?:src|href)="\.\/(assets\/[^"]+)"/g)].map((m) => m[1]!);
}

test("/_/ui redirects to /_/ui/, which serves index.html with a strict CSP, revalidated", async () => {
  const r = await fetch(`${s.url}/_/ui`, { redirect: "manual" });
  assert.equal(r.status, 301);
  assert.equal(r.headers.get("location"), "/_/ui/");
  const page = await fetch(`${s.url}/_/ui/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type")!, /^text\/html/);
  assert.equal(page.headers.get("cache-control"), "no-cache");
  const csp = page.headers.get("content-security-policy")!;
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(page.headers.get("x-content-type-options"), "nosniff");
  assert.equal(page.headers.get("referrer-policy"), "no-referrer");
  assert.equal(page.headers.get("x-frame-options"), "DENY");
  const html = await page.text();
  assert.equal(assetsOf(html).length, 2, html);
  const again = await fetch(`${s.url}/_/ui/`, { headers: { "if-none-match": page.headers.get("etag")! } });
  assert.equal(again.status, 304);
});

test("content-hashed assets are immutable and sent precompressed when accepted", async () => {
  const html = await (await fetch(`${s.url}/_/ui/`)).text();
  for (const asset of assetsOf(html)) {
    assert.match(asset, /-[A-Z0-9]{8}\.(js|css)$/, "the name carries its content hash");
    const plain = await fetch(`${s.url}/_/ui/${asset}`, { headers: { "accept-encoding": "identity" } });
    assert.equal(plain.status, 200);
    assert.equal(plain.headers.get("cache-control"), "public, max-age=31536000, immutable");
    assert.equal(plain.headers.get("content-encoding"), null);
    assert.ok(plain.headers.get("content-security-policy"));
    const body = Buffer.from(await plain.arrayBuffer());
    assert.deepEqual(body, readFileSync(path.join(DIST, asset)));
    // Node's fetch would decode gzip itself; ask with a raw request instead.
    const gz = await fetch(`${s.url}/_/ui/${asset}`, { headers: { "accept-encoding": "gzip" } });
    assert.equal(gz.headers.get("content-encoding"), "gzip");
    assert.equal(gz.headers.get("vary"), "accept-encoding");
    assert.deepEqual(Buffer.from(await gz.arrayBuffer()), body);
    assert.deepEqual(gunzipSync(readFileSync(path.join(DIST, `${asset}.gz`))), body);
  }
});

test("unknown UI paths are 404 and writes are 405, nothing else is served from /_/ui/", async () => {
  const missing = await fetch(`${s.url}/_/ui/assets/nothing.js`);
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get("cacheroach-error-code"), "ERR_NOT_FOUND");
  assert.equal((await fetch(`${s.url}/_/ui/manifest.json`)).status, 404);
  const put = await fetch(`${s.url}/_/ui/index.html`, {
    method: "PUT",
    body: "x",
    headers: { authorization: `Bearer ${s.superToken}` },
  });
  assert.equal(put.status, 405);
});

test("a first load (index.html, script, stylesheet) is under 200 KB compressed", async () => {
  const manifest = JSON.parse(readFileSync(path.join(DIST, "manifest.json"), "utf8")) as {
    files: Record<string, { size: number; gzip: number; br: number }>;
  };
  const files = Object.values(manifest.files);
  assert.equal(files.length, 3);
  const gzip = files.reduce((n, f) => n + f.gzip, 0);
  const raw = files.reduce((n, f) => n + f.size, 0);
  console.log(
    `first load: ${raw} bytes, ${gzip} bytes gzip, ${files.reduce((n, f) => n + f.br, 0)} bytes br`,
  );
  assert.ok(gzip < 200_000, `first load is ${gzip} bytes gzip`);
});
