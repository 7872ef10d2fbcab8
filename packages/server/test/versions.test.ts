/** Files.Versions: every stored version of a path, newest first, paged, with its state; read access. */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Files, SessionSchema, Tenants, Tokens, Uploads } from "@cacheroach/proto";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { startTestServer, type TestServer } from "../src/testing.js";

let ts: TestServer;
let files: Client<typeof Files>;
let uploads: Client<typeof Uploads>;
let tenant: string;

before(async () => {
  ts = await startTestServer();
  files = ts.client(Files, ts.superToken);
  uploads = ts.client(Uploads, ts.superToken);
  tenant = (await ts.client(Tenants, ts.superToken).ensure({ tenant: { label: "versions test" } })).tenant!
    .id;
});
after(async () => {
  await ts?.close();
});

async function put(path: string, text: string): Promise<void> {
  await uploads.begin({ tenantId: tenant, path, committed: { case: "contents", value: Buffer.from(text) } });
}

async function rejects(p: Promise<unknown>, code: Code, re: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    const ce = ConnectError.from(err);
    assert.equal(ce.code, code, ce.message);
    assert.match(ce.rawMessage, re);
    return true;
  });
}

describe("Files.Versions", () => {
  test("lists live, superseded and deleted versions newest first, in pages", async () => {
    await put("/v/a.txt", "one");
    await put("/v/a.txt", "two!");
    await put("/v/a.txt", "three");
    const res = await files.versions({ tenantId: tenant, path: "/v/a.txt" });
    assert.deepEqual(
      res.versions.map((v) => [
        Number(v.file!.version),
        Number(v.file!.size),
        v.live,
        v.deletedAt !== undefined,
      ]),
      [
        [3, 5, true, false],
        [2, 4, false, false],
        [1, 3, false, false],
      ],
    );
    assert.equal(res.nextBeforeVersion, 0n);

    await files.delete({ tenantId: tenant, path: "/v/a.txt" });
    await put("/v/a.txt", "four");
    const pages: number[][] = [];
    let before = 0n;
    do {
      const page = await files.versions({
        tenantId: tenant,
        path: "/v/a.txt",
        beforeVersion: before,
        pageSize: 2,
      });
      pages.push(page.versions.map((v) => Number(v.file!.version)));
      before = page.nextBeforeVersion;
    } while (before !== 0n);
    assert.deepEqual(pages, [[4, 3], [2, 1], []]);
    const all = await files.versions({ tenantId: tenant, path: "/v/a.txt" });
    assert.deepEqual(
      all.versions.map((v) => [v.live, v.deletedAt !== undefined]),
      [
        [true, false],
        [false, true],
        [false, true],
        [false, true],
      ],
    );
  });

  test("a path without versions is NOT_FOUND; bad input is refused", async () => {
    await rejects(
      files.versions({ tenantId: tenant, path: "/v/nope" }),
      Code.NotFound,
      /no versions of \/v\/nope/,
    );
    await rejects(
      files.versions({ tenantId: tenant, path: "/v/a.txt", pageSize: 1001 }),
      Code.InvalidArgument,
      /page_size/,
    );
    await rejects(
      files.versions({ tenantId: tenant, path: "/v/a.txt", beforeVersion: -1n }),
      Code.InvalidArgument,
      /version/,
    );
    await rejects(files.versions({ tenantId: tenant, path: "v/a.txt" }), Code.InvalidArgument, /path/);
  });

  test("needs read on the path", async () => {
    await put("/mine/x", "x");
    await put("/theirs/y", "y");
    const issued = await ts.client(Tokens, ts.superToken).issue({
      template: create(SessionSchema, {
        principalId: ts.rootPrincipalId,
        capabilities: { read: true },
        scope: { kind: { case: "onLocation", value: { tenantId: tenant, path: "/mine/*" } } },
        expiresAt: timestampFromDate(new Date(Date.now() + 60_000)),
      }),
    });
    const limited = ts.client(Files, issued.token!.jwt);
    const ok = await limited.versions({ tenantId: tenant, path: "/mine/x" });
    assert.equal(ok.versions.length, 1);
    await rejects(limited.versions({ tenantId: tenant, path: "/theirs/y" }), Code.PermissionDenied, /read/);
  });
});
