/**
 * The server's stable error codes (ERR_*) reach describeError on every path: per-item errors of
 * batch calls (ItemError.error_code) and the plain-HTTP download (the cacheroach-error-code
 * header), not only single RPCs.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { create } from "@bufbuild/protobuf";
import { FileMetaSchema, Files, Uploads } from "@cacheroach/proto";
import { Code, ConnectError, createClient, createRouterTransport } from "@connectrpc/connect";
import { downloadBatch } from "../src/lib/batch-download.js";
import { uploadBatch } from "../src/lib/batch-upload.js";
import { downloadFile } from "../src/lib/download.js";
import { describeError, itemConnectError, SERVER_ERROR_CODE, serverErrorCode } from "../src/lib/errors.js";
import { HttpClient } from "../src/lib/http.js";
import { listenHttp, tempDir } from "./helpers.js";

test("itemConnectError keeps the Connect code and puts the server's code in the metadata", () => {
  const err = itemConnectError({
    code: "unavailable",
    message: "/a: disk full",
    errorCode: "ERR_STORAGE_FULL",
  });
  assert.equal(err.code, Code.Unavailable);
  assert.equal(err.rawMessage, "/a: disk full");
  assert.equal(serverErrorCode(err), "ERR_STORAGE_FULL");
  assert.match(describeError(err).suggestions.join("\n"), /out of disk space/);
  // An older server sends no error_code: nothing is made up.
  const plain = itemConnectError({ code: "not_found", message: "/b", errorCode: "" });
  assert.equal(plain.code, Code.NotFound);
  assert.equal(serverErrorCode(plain), undefined);
});

test("the server's database conditions are said as such, exit 7", () => {
  const cases: [string, RegExp, RegExp][] = [
    ["ERR_DATABASE_UNAVAILABLE", /the server's database is unavailable/, /cannot reach its database/],
    ["ERR_DATABASE_READ_ONLY", /the server's database refuses writes for now/, /reads still work/],
    ["ERR_STORAGE_FULL", /the server's database is out of disk space/, /free space/],
  ];
  for (const [code, message, advice] of cases) {
    const err = new ConnectError("database trouble", Code.Unavailable, {
      [SERVER_ERROR_CODE]: code,
      "retry-after": "2",
    });
    const d = describeError(err, { server: "http://127.0.0.1:1" });
    assert.equal(d.exit, 7, code);
    assert.match(d.message, message, code);
    assert.match(d.suggestions.join("\n"), advice, code);
  }
});

test("a file of a PutFiles batch fails with the server's code", async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await writeFile(join(dir, "a"), "a");
    await writeFile(join(dir, "b"), "b");
    const transport = createRouterTransport((router) => {
      router.service(Uploads, {
        putFiles(req) {
          return {
            results: req.files.map(() => ({
              result: {
                case: "error" as const,
                value: {
                  code: "permission_denied",
                  message: "fetch needs super",
                  errorCode: "ERR_SUPER_REQUIRED",
                },
              },
            })),
          };
        },
      });
    });
    const out = await uploadBatch(
      [
        { localPath: join(dir, "a"), remotePath: "/a", size: 1 },
        { localPath: join(dir, "b"), remotePath: "/b", size: 1 },
      ],
      { uploads: createClient(Uploads, transport), tenantId: "t" },
    );
    for (const o of out) {
      assert.ok(o instanceof ConnectError);
      assert.equal(serverErrorCode(o), "ERR_SUPER_REQUIRED");
      assert.match(describeError(o).suggestions.join("\n"), /only a super session may do this/);
    }
  } finally {
    await cleanup();
  }
});

test("a file of a ReadMany batch fails with the server's code", async () => {
  const transport = createRouterTransport((router) => {
    router.service(Files, {
      readMany(req) {
        return {
          results: req.paths.map((p) => ({
            error: { code: "unavailable", message: `${p}: read-only`, errorCode: "ERR_DATABASE_READ_ONLY" },
          })),
        };
      },
    });
  });
  const http = new HttpClient();
  try {
    const [o] = await downloadBatch(["/a"], ["/tmp/never-written"], {
      files: createClient(Files, transport),
      tenantId: "t",
      server: "http://127.0.0.1:1",
      http,
    });
    assert.ok(o instanceof ConnectError);
    assert.equal(serverErrorCode(o), "ERR_DATABASE_READ_ONLY");
    assert.match(describeError(o).suggestions.join("\n"), /refuses writes for now/);
  } finally {
    http.close();
  }
});

test("a signed-URL download that fails over HTTP keeps the server's code, also after retries", async () => {
  const server = await listenHttp((_req, res) => {
    res.writeHead(503, { [SERVER_ERROR_CODE]: "ERR_STORAGE_FULL", "content-type": "text/plain" });
    res.end("storage full");
  });
  const base = server.url;
  const transport = createRouterTransport((router) => {
    router.service(Files, {
      retrieve() {
        return {
          file: create(FileMetaSchema, {
            path: "/a",
            version: 1n,
            size: 1n,
            chunkSize: 1024,
            contentHash: Buffer.alloc(32),
          }),
          getUri: "/_/v0/retrieve/x",
        };
      },
    });
  });
  const { dir, cleanup } = await tempDir();
  const http = new HttpClient();
  try {
    await assert.rejects(
      downloadFile(
        "/a",
        { kind: "file", path: join(dir, "a") },
        {
          files: createClient(Files, transport),
          tenantId: "t",
          server: base,
          http,
          attempts: 2,
          retryDelayMs: 1,
        },
      ),
      (err: unknown) => {
        assert.ok(err instanceof ConnectError);
        assert.equal(err.code, Code.Unavailable);
        assert.match(err.message, /gave up after 2 attempts/);
        assert.equal(serverErrorCode(err), "ERR_STORAGE_FULL");
        assert.match(describeError(err).suggestions.join("\n"), /out of disk space/);
        return true;
      },
    );
  } finally {
    http.close();
    await server.close();
    await cleanup();
  }
});
