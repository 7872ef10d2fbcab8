/**
 * Measures `file put` / `file get` throughput of each client transport against a real server in
 * its own process (so client and server do not share a CPU thread), on a fresh database.
 *
 *   PG_TEST_URL=postgres://… node --import tsx bench/transports.ts [MiB] [rounds]
 *
 * Each upload goes to a fresh tenant, so every run stores all its chunks (dedup is per tenant).
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  downloadFile,
  HttpClient,
  makeTransport,
  TRANSPORT_KINDS,
  type TransportKind,
  uploadFile,
} from "@cacheroach/cli";
import { Files, Principals, Tenants, Tokens, Uploads } from "@cacheroach/proto";
import { mintBootstrapToken, readSigningKeys } from "@cacheroach/server";
import { createTestDatabase } from "@cacheroach/server/testing";
import { createClient, type Interceptor } from "@connectrpc/connect";

const MiB = 1 << 20;
const size = Number(process.argv[2] ?? 256) * MiB;
const rounds = Number(process.argv[3] ?? 3);
const cliRoot = join(import.meta.dirname, "..", "packages", "cli");

const db = await createTestDatabase();
const dir = await mkdtemp(join(tmpdir(), "cacheroach-bench-"));
const server: ChildProcessWithoutNullStreams = spawn(
  process.execPath,
  [
    join(cliRoot, "bin", "run.js"),
    "start",
    "--json",
    "--bind",
    "127.0.0.1:0",
    "--data-dir",
    join(dir, "data"),
  ],
  { env: { ...process.env, CACHEROACH_CONNECT: db.url, CACHEROACH_LOG_LEVEL: "warn" } },
);
try {
  const url = await new Promise<string>((resolve, reject) => {
    let text = "";
    server.stdout.on("data", (d: Buffer) => {
      text += d.toString();
      try {
        resolve((JSON.parse(text) as { url: string }).url);
      } catch {}
    });
    server.once("exit", (c) => reject(new Error(`server exited ${c}`)));
  });
  const key = (await readSigningKeys(join(dir, "data")))[0]!;
  const boot = await mintBootstrapToken(key, 600);
  const bearer =
    (token: string): Interceptor =>
    (next) =>
    (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    };
  const admin = makeTransport(url, "connect-h1", [bearer(boot)]);
  const principal = await createClient(Principals, admin.transport).ensure({
    principal: { claimsJson: "{}" },
  });
  const issued = await createClient(Tokens, admin.transport).issue({
    template: {
      principalId: principal.principal!.id,
      capabilities: { read: true, write: true, delegate: true, pii: true, fetch: true },
      scope: { kind: { case: "superToken", value: true } },
    },
  });
  const token = issued.token!.jwt;
  const tenants = createClient(Tenants, makeTransport(url, "connect-h1", [bearer(token)]).transport);

  const file = join(dir, "payload.bin");
  const fh = await open(file, "w");
  for (let off = 0; off < size; off += 8 * MiB) await fh.write(randomBytes(Math.min(8 * MiB, size - off)));
  await fh.close();

  console.log(`${size / MiB} MiB, ${rounds} rounds, server ${url}`);
  const kinds = (process.argv[4]?.split(",") ?? [...TRANSPORT_KINDS]) as TransportKind[];
  for (const kind of kinds) {
    const put: number[] = [];
    const get: number[] = [];
    const dedup: number[] = [];
    const reput: number[] = [];
    const freshDedup: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t = makeTransport(url, kind, [bearer(token)]);
      const tenant = await tenants.ensure({ tenant: { label: `bench-${kind}-${r}` } });
      const tenantId = tenant.tenant!.id;
      const uploads = createClient(Uploads, t.transport);
      let t0 = performance.now();
      await uploadFile({ localPath: file, remotePath: "/p.bin", size }, { uploads, tenantId });
      put.push(size / MiB / ((performance.now() - t0) / 1000));
      t0 = performance.now();
      await uploadFile({ localPath: file, remotePath: "/p2.bin", size }, { uploads, tenantId });
      reput.push(size / MiB / ((performance.now() - t0) / 1000));
      t0 = performance.now();
      await uploadFile({ localPath: file, remotePath: "/p3.bin", size }, { uploads, tenantId, dedup: true });
      dedup.push(size / MiB / ((performance.now() - t0) / 1000));
      const tenant2 = await tenants.ensure({ tenant: { label: `bench-${kind}-${r}-dedup` } });
      t0 = performance.now();
      await uploadFile(
        { localPath: file, remotePath: "/p.bin", size },
        { uploads, tenantId: tenant2.tenant!.id, dedup: true },
      );
      freshDedup.push(size / MiB / ((performance.now() - t0) / 1000));
      const out = join(dir, "out.bin");
      t0 = performance.now();
      // Downloads fetch a signed URL over plain HTTP; the transport only carries Files.Retrieve.
      const http = new HttpClient();
      await downloadFile(
        "/p.bin",
        { kind: "file", path: out },
        { files: createClient(Files, t.transport), tenantId, server: url, http },
      );
      http.close();
      get.push(size / MiB / ((performance.now() - t0) / 1000));
      await rm(out);
      t.close();
    }
    const f = (xs: number[]) => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;
    console.log(
      `${kind.padEnd(12)} put ${f(put).padStart(9)}   put --dedup ${f(freshDedup).padStart(9)}   re-put ${f(reput).padStart(9)}   re-put --dedup ${f(dedup).padStart(9)}   get ${f(get).padStart(9)}  (MiB/s)`,
    );
  }
} finally {
  server.kill("SIGTERM");
  await new Promise((r) => server.once("exit", r));
  await db.drop();
  await rm(dir, { recursive: true, force: true });
}
