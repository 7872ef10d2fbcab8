/**
 * Client mistakes are 400 / InvalidArgument naming the problem, never 500, and store nothing:
 * NUL where the database cannot hold it, content types that could
 * not be sent back as a header, at every entry point. A type stored before validation existed
 * no longer breaks every read of its file.
 */
import assert from "node:assert/strict";
import http from "node:http";
import { after, before, describe, test } from "node:test";
import { Files, Principals, Tenants, Uploads, VHosts } from "@cacheroach/proto";
import { Code } from "@connectrpc/connect";
import pg from "pg";
import { startTestServer, type TestServer } from "../src/testing.js";
import { rejects } from "./connect-assert.js";

let ts: TestServer;
let db: pg.Client;
let tenant: string;
const uploads = () => ts.client(Uploads, ts.superToken);

/** Versions ever written at `path` in the test tenant. */
async function versions(path: string): Promise<number> {
  const r = await db.query<{ n: string }>(
    "SELECT count(*) AS n FROM file_versions WHERE tenant_id = $1 AND path = $2",
    [tenant, Buffer.from(path)],
  );
  return Number(r.rows[0]!.n);
}

/** A plain-HTTP request with raw header values (node:http sends them as Latin-1). */
function send(method: string, path: string, headers: Record<string, string>, body?: string) {
  const u = new URL(ts.url);
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; text: string }>(
    (resolve, reject) => {
      const r = http.request(
        {
          host: u.hostname,
          port: u.port,
          path,
          method,
          agent: false,
          headers: { authorization: `Bearer ${ts.superToken}`, ...headers },
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (d) => (text += d));
          res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, text }));
        },
      );
      r.on("error", reject);
      r.end(body);
    },
  );
}

before(async () => {
  ts = await startTestServer();
  db = new pg.Client({ connectionString: ts.databaseUrl });
  await db.connect();
  tenant = (await ts.client(Tenants, ts.superToken).ensure({ tenant: { label: "input" } })).tenant!.id;
  await ts.client(VHosts, ts.superToken).ensure({ vhost: { vhost: "127.0.0.1", tenantId: tenant } });
});
after(async () => {
  await db?.end();
  await ts?.close();
});

describe("NUL in user metadata", () => {
  const data = { case: "contents" as const, value: Buffer.from("x") };

  test("Begin (one-shot) and PutFiles refuse them, naming meta, and store nothing", async () => {
    await rejects(
      uploads().begin({ tenantId: tenant, path: "/m/begin", committed: data, meta: { k: "a\u0000b" } }),
      Code.InvalidArgument,
      /meta value of "k" contains NUL/,
    );
    await rejects(
      uploads().putFiles({
        tenantId: tenant,
        files: [{ path: "/m/batch", contents: Buffer.from("x"), meta: { "bad\u0000key": "v" } }],
      }),
      Code.InvalidArgument,
      /meta key contains NUL/,
    );
    assert.equal(await versions("/m/begin"), 0);
    assert.equal(await versions("/m/batch"), 0);
  });

  test("Commit of a multi-step upload refuses them and stores nothing", async () => {
    const begun = await uploads().begin({ tenantId: tenant, path: "/m/commit" });
    const sent = await uploads().transfer({ state: begun.state, data: Buffer.from("hello") });
    await rejects(
      uploads().commit({ state: sent.state, meta: { note: "x\u0000" } }),
      Code.InvalidArgument,
      /contains NUL/,
    );
    assert.equal(await versions("/m/commit"), 0);
  });
});

describe("database data exceptions caused by client values are InvalidArgument", () => {
  test("NUL in a tenant label or in principal claims", async () => {
    await rejects(
      ts.client(Tenants, ts.superToken).ensure({ tenant: { label: "bad\u0000label" } }),
      Code.InvalidArgument,
      /character the database cannot store/,
    );
    await rejects(
      ts.client(Principals, ts.superToken).ensure({
        principal: { claimsJson: JSON.stringify({ name: "nul\u0000name" }) },
      }),
      Code.InvalidArgument,
      /character the database cannot store/,
    );
    const r = await db.query("SELECT count(*) AS n FROM tenants WHERE label LIKE 'bad%'");
    assert.equal(Number(r.rows[0].n), 0);
  });
});

describe("content types are validated where they enter", () => {
  test("HTTP PUT refuses a Content-Type that is not a media type of visible ASCII", async () => {
    for (const ct of ["nonsense", 'text/plain; charset="open', "text/plain; name=ä", "text/ plain", "/x"]) {
      const path = `/ct/http-${Buffer.from(ct).toString("hex")}`;
      const r = await send("PUT", path, { "content-type": ct }, "body");
      assert.equal(r.status, 400, `${ct}: ${r.text}`);
      assert.match(r.text, /content type .* is not a media type/);
      assert.equal(await versions(path), 0, ct);
    }
    const ok = await send(
      "PUT",
      "/ct/ok",
      { "content-type": 'text/plain; charset="utf-8"; format=flowed' },
      "b",
    );
    assert.equal(ok.status, 201, ok.text);
    const form = await send(
      "PUT",
      "/ct/form",
      { "content-type": "application/x-www-form-urlencoded" },
      "a=1",
    );
    assert.equal(form.status, 201, "curl -d's default type is still accepted (and dropped)");
  });

  test("RPC Begin, PutFiles and Commit refuse types that could not be served back", async () => {
    const bad = ["text/plain; x=\u20ac", "text/html; a=\u0001", `text/${"x".repeat(300)}`];
    for (const contentType of bad) {
      await rejects(
        uploads().begin({
          tenantId: tenant,
          path: "/ct/rpc",
          committed: { case: "contents", value: Buffer.from("x") },
          contentType,
        }),
        Code.InvalidArgument,
        /content_type/,
      );
      await rejects(
        uploads().putFiles({
          tenantId: tenant,
          files: [{ path: "/ct/rpc", contents: Buffer.from("x"), contentType }],
        }),
        Code.InvalidArgument,
        /content_type/,
      );
      const begun = await uploads().begin({ tenantId: tenant, path: "/ct/rpc" });
      await rejects(
        uploads().commit({ state: begun.state, contentType }),
        Code.InvalidArgument,
        /content_type/,
      );
    }
    assert.equal(await versions("/ct/rpc"), 0);
  });

  test("a file stored with an unsendable type (before validation) is still served", async () => {
    assert.equal((await send("PUT", "/ct/legacy.txt", {}, "old")).status, 201);
    for (const table of ["files", "file_versions"]) {
      await db.query(`UPDATE ${table} SET content_type = $3 WHERE tenant_id = $1 AND path = $2`, [
        tenant,
        Buffer.from("/ct/legacy.txt"),
        "text/plain; x=\u20ac\u0001",
      ]);
    }
    const r = await send("GET", "/ct/legacy.txt", {});
    assert.equal(r.status, 200, r.text);
    assert.equal(r.text, "old");
    assert.equal(r.headers["content-type"], "text/plain; charset=utf-8");
    const stat = await ts.client(Files, ts.superToken).stat({ tenantId: tenant, path: "/ct/legacy.txt" });
    assert.equal(stat.file?.size, 3n);
  });
});
