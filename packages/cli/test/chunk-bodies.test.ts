/**
 * The CLI sending new chunks as streamed bodies (chunk-bodies.ts, POST /_/v0/uploads/chunks): a
 * real `cacheroach file put` process against a real server stores exactly the file, counted in
 * the tenant's usage, without a PutChunks call; a body cut off midway is sent again and the
 * upload succeeds; a server without the route (an older one) gets PutChunks instead; the
 * server's refusals arrive as the ConnectErrors PutChunks would give.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { createServer, type Server, Socket } from "node:net";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { ChunkBodies } from "@cacheroach/cli";
import { chunkHash } from "@cacheroach/core";
import { Tenants, Tokens, Uploads } from "@cacheroach/proto";
import { Code, ConnectError } from "@connectrpc/connect";
import { spawnCli, useCliServer, writeCliConfig } from "./helpers.js";

const CHUNK = 64 * 1024;
const ROUTE = "/_/v0/uploads/chunks";
const s = useCliServer({ server: { chunkSize: CHUNK } });

/**
 * A TCP proxy to the test server that looks at the first bytes of each connection: one that
 * starts a chunk upload is handed to `onChunks` (with the upstream connection), others pass.
 */
async function proxy(onChunks: (client: Socket, upstream: Socket, first: Buffer) => void): Promise<{
  url: string;
  close(): Promise<void>;
}> {
  const target = new URL(s.ts.url);
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    sockets.add(client);
    client.on("error", () => {});
    client.once("data", (first: Buffer) => {
      client.pause();
      const upstream = new Socket();
      sockets.add(upstream);
      upstream.on("error", () => client.destroy());
      upstream.connect(Number(target.port), target.hostname, () => {
        if (first.toString("latin1").startsWith(`POST ${ROUTE} `)) {
          onChunks(client, upstream, first);
        } else {
          upstream.write(first);
          client.pipe(upstream);
          upstream.pipe(client);
        }
        client.resume();
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const so of sockets) so.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

async function newTenant(label: string): Promise<string> {
  return (await s.ts.client(Tenants, s.ts.superToken).ensure({ tenant: { label } })).tenant!.id;
}

/** `file put` of `data` as a child process with --verbose; its exit code and stderr. */
async function put(config: string, tenant: string, data: Buffer, env: Record<string, string> = {}) {
  const path = join(s.dir, `${tenant}.bin`);
  await writeFile(path, data);
  const r = await spawnCli(
    ["file", "put", "/f.bin", path, "-t", tenant, "--no-hash-cache", "-v", "-c", config],
    {
      env,
    },
  );
  return { code: r.code, stderr: r.stderr };
}

/** The file as read back by `file get`. */
async function read(tenant: string): Promise<Buffer> {
  const r = await spawnCli(["file", "get", "/f.bin", "-o", "-", "-t", tenant, "-c", s.config]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

async function usage(tenant: string) {
  const t = await s.ts.client(Tenants, s.ts.superToken).get({ id: tenant, withUsage: true });
  return { chunks: Number(t.tenant!.usage!.chunks), bytes: Number(t.tenant!.usage!.physicalBytes) };
}

describe("file put sends new chunks as bodies", () => {
  test("the file is stored exactly, its usage counted, and no PutChunks call is made", async () => {
    const t = await newTenant("bodies");
    const data = randomBytes(70 * CHUNK + 123);
    const r = await put(s.config, t, data);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /chunk body: 32 chunks, 2097152 bytes, 32 new/);
    assert.doesNotMatch(r.stderr, /Uploads\/PutChunks/);
    assert.deepEqual(await read(t), data);
    assert.deepEqual(await usage(t), { chunks: 71, bytes: data.length });
  });

  test("CACHEROACH_CHUNK_UPLOAD=rpc sends them with PutChunks", async () => {
    const t = await newTenant("rpc");
    const data = randomBytes(40 * CHUNK + 1);
    const r = await put(s.config, t, data, { CACHEROACH_CHUNK_UPLOAD: "rpc" });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Uploads\/PutChunks ok/);
    assert.doesNotMatch(r.stderr, /chunk body:/);
    assert.deepEqual(await read(t), data);
    assert.deepEqual(await usage(t), { chunks: 41, bytes: data.length });
    const bad = await put(s.config, t, data, { CACHEROACH_CHUNK_UPLOAD: "carrier-pigeon" });
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /CACHEROACH_CHUNK_UPLOAD=carrier-pigeon is not one of http, rpc/);
  });

  test("a body cut off inside a chunk stores nothing partial; it is sent again and the upload succeeds", async () => {
    let cut = 0;
    const p = await proxy((client, upstream, first) => {
      if (cut > 0) {
        upstream.write(first);
        client.pipe(upstream);
        upstream.pipe(client);
        return;
      }
      cut++;
      // Forward the head and part of the first chunk, then break both connections.
      upstream.write(first);
      let sent = first.length;
      client.on("data", (d: Buffer) => {
        if (sent > 100_000) return;
        upstream.write(d);
        sent += d.length;
        if (sent > 100_000) {
          setTimeout(() => {
            client.destroy();
            upstream.destroy();
          }, 100);
        }
      });
    });
    try {
      const config = await writeCliConfig(join(s.dir, "cut.cfg"), p.url, s.ts.superToken);
      const t = await newTenant("cut");
      const data = randomBytes(20 * CHUNK);
      const r = await put(config, t, data);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(cut, 1, "the first body was cut off");
      assert.match(r.stderr, /attempt 1 failed .*chunk upload/);
      assert.deepEqual(await read(t), data);
      assert.deepEqual(await usage(t), { chunks: 20, bytes: data.length });
    } finally {
      await p.close();
    }
  });

  const refusals = [
    {
      who: "a server without the route (older)",
      head: "HTTP/1.1 404 Not Found\r\ncacheroach-error-code: ERR_NOT_FOUND",
      text: `no such endpoint ${ROUTE}\n`,
    },
    {
      who: "a proxy that takes no large bodies",
      head: "HTTP/1.1 413 Payload Too Large",
      text: "too large\n",
    },
  ];
  for (const [i, { who, head, text }] of refusals.entries()) {
    test(`${who} gets PutChunks, and the upload succeeds`, async () => {
      let refused = 0;
      const p = await proxy((client, upstream) => {
        refused++;
        upstream.destroy();
        client.end(
          `${head}\r\ncontent-type: text/plain\r\ncontent-length: ${text.length}\r\nconnection: close\r\n\r\n${text}`,
        );
      });
      try {
        const config = await writeCliConfig(join(s.dir, `refused-${i}.cfg`), p.url, s.ts.superToken);
        const t = await newTenant(who);
        const data = randomBytes(70 * CHUNK + 9);
        const r = await put(config, t, data);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(refused, 1, "asked once, then PutChunks for the rest of the upload");
        assert.match(r.stderr, /takes no chunk bodies; sending with PutChunks/);
        assert.match(r.stderr, /Uploads\/PutChunks ok/);
        assert.deepEqual(await read(t), data);
        assert.deepEqual(await usage(t), { chunks: 71, bytes: data.length });
      } finally {
        await p.close();
      }
    });
  }
});

describe("ChunkBodies", () => {
  let uploads: ReturnType<typeof s.ts.client<typeof Uploads>>;
  before(() => {
    uploads = s.ts.client(Uploads, s.ts.superToken);
  });

  async function refusal(p: Promise<unknown>): Promise<ConnectError> {
    try {
      await p;
    } catch (err) {
      assert.ok(err instanceof ConnectError, String(err));
      return err;
    }
    throw new Error("expected a refusal");
  }

  test("the server's refusals arrive as PutChunks' ConnectErrors, with the stable code", async () => {
    const t = await newTenant("refusals");
    const b = await uploads.begin({ tenantId: t, path: "/w/f.bin" });
    const data = randomBytes(CHUNK);
    const good = [{ hash: chunkHash(data), data }];

    const bodies = new ChunkBodies(s.ts.url, s.ts.superToken);
    try {
      const ok = await bodies.post(b.state, good);
      assert.deepEqual(ok, { chunks: 1, bytes: CHUNK, stored: 1 });
      const bad = await refusal(bodies.post(b.state, [{ hash: chunkHash(Buffer.from("x")), data }]));
      assert.equal(bad.code, Code.InvalidArgument);
      assert.match(bad.rawMessage, /does not match its data; nothing was stored/);
      assert.equal(bad.metadata.get("cacheroach-error-code"), "ERR_BAD_REQUEST");
      const tampered = Buffer.from(b.state);
      tampered[30]! ^= 1;
      const state = await refusal(bodies.post(tampered, good));
      assert.equal(state.code, Code.InvalidArgument);
      assert.equal(state.metadata.get("cacheroach-error-code"), "ERR_BAD_UPLOAD_STATE");
    } finally {
      bodies.close();
    }

    const reader = await s.ts.client(Tokens, s.ts.superToken).issue({
      template: {
        principalId: s.ts.rootPrincipalId,
        capabilities: { read: true },
        scope: { kind: { case: "onLocation", value: { tenantId: t, path: "/*" } } },
      },
    });
    const readOnly = new ChunkBodies(s.ts.url, reader.token!.jwt);
    try {
      const denied = await refusal(readOnly.post(b.state, good));
      assert.equal(denied.code, Code.PermissionDenied);
      assert.match(denied.rawMessage, /lacks write on \/w\/f\.bin/);
      assert.equal(denied.metadata.get("cacheroach-error-code"), "ERR_PERMISSION_DENIED");
    } finally {
      readOnly.close();
    }

    const nobody = new ChunkBodies("http://127.0.0.1:9/", s.ts.superToken);
    try {
      const down = await refusal(nobody.post(b.state, good));
      assert.equal(down.code, Code.Unavailable, "a connection failure is retried like an unavailable RPC");
    } finally {
      nobody.close();
    }
  });
});
