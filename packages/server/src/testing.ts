import { randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Principals, SessionSchema, Tokens } from "@cacheroach/proto";
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import pg from "pg";
import type { ServerOptions } from "./config.js";

export { type EmbeddedPostgres, startEmbeddedPostgres } from "./db/embedded-postgres.js";

import { type RunningServer, startServer } from "./server.js";
import { mintBootstrapToken } from "./signing-keys.js";

/**
 * Test support shared by the server and CLI test suites (not used in production). The test
 * runner is started by scripts/with-pg.ts, which provides PG_TEST_URL (an embedded PostgreSQL,
 * or DATABASE_URL when set).
 */

/** A database created for one test file. */
export interface TestDatabase {
  readonly url: string;
  drop(): Promise<void>;
}

/** Creates a fresh, empty database on the test server (PG_TEST_URL or DATABASE_URL). */
export async function createTestDatabase(): Promise<TestDatabase> {
  const base = process.env["PG_TEST_URL"] ?? process.env["DATABASE_URL"];
  if (!base) throw new Error("PG_TEST_URL is not set: run tests through `npm test` (scripts/with-pg.ts)");
  const name = `t_${process.pid}_${randomBytes(4).toString("hex")}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** A server on a fresh database, with a durable super session. */
export interface TestServer {
  readonly url: string;
  readonly server: RunningServer;
  readonly databaseUrl: string;
  readonly signingKey: Uint8Array;
  /** JWT of a durable super session for a "root" principal. */
  readonly superToken: string;
  /** The principal owning superToken. */
  readonly rootPrincipalId: string;
  /** A transport to the server presenting `token` (default: none). */
  transport(token?: string): Transport;
  /** A typed client of one service presenting `token`. */
  client<T extends Parameters<typeof createClient>[0]>(service: T, token?: string): Client<T>;
  close(): Promise<void>;
}

/** Starts a server on a fresh database (dropped on close) and bootstraps a super session. */
export async function startTestServer(options: Partial<ServerOptions> = {}): Promise<TestServer> {
  const db = await createTestDatabase();
  const signingKey = new Uint8Array(randomBytes(32));
  let server: RunningServer;
  try {
    server = await startServer({
      bind: "127.0.0.1:0",
      databaseUrl: db.url,
      signingKeys: [signingKey],
      logLevel: "silent",
      maxConnections: 8,
      // Closes at once, as tests always have; draining is tested on server processes
      // (packages/cli/test/lifecycle.test.ts).
      gracePeriodMs: 0,
      ...options,
    });
  } catch (err) {
    await db.drop();
    throw err;
  }
  const transport = (token?: string) => testTransport(server.url, token);
  const root = await issueSuperToken(server.url, signingKey);
  return {
    url: server.url,
    server,
    databaseUrl: db.url,
    signingKey,
    superToken: root.token,
    rootPrincipalId: root.principalId,
    transport,
    client: (service, token) => createClient(service, transport(token)),
    async close() {
      await server.close();
      await db.drop();
    },
  };
}

/**
 * A durable super session (one hour) for a "root" principal on the server at `url`, obtained with a
 * bootstrap token signed by `signingKey`: what `cacheroach bootstrap` does.
 */
export async function issueSuperToken(
  url: string,
  signingKey: Uint8Array,
): Promise<{ token: string; principalId: string }> {
  const boot = await mintBootstrapToken(signingKey, 300);
  const principals = createClient(Principals, testTransport(url, boot));
  const tokens = createClient(Tokens, testTransport(url, boot));
  const p = await principals.ensure({
    principal: { claimsJson: JSON.stringify({ name: "root", source: "test" }) },
  });
  const issued = await tokens.issue({
    template: create(SessionSchema, {
      principalId: p.principal!.id,
      capabilities: { read: true, write: true, delegate: true, pii: true, fetch: true },
      scope: { kind: { case: "superToken", value: true } },
      expiresAt: timestampFromDate(new Date(Date.now() + 3_600_000)),
      note: "test super session",
    }),
  });
  return { token: issued.token!.jwt, principalId: p.principal!.id };
}

/** Connect-protocol transport (HTTP/1.1, binary, no compression) presenting a bearer token. */
export function testTransport(baseUrl: string, token?: string): Transport {
  const auth: Interceptor = (next) => (req) => {
    if (token) req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  return createConnectTransport({
    baseUrl,
    httpVersion: "1.1",
    useBinaryFormat: true,
    acceptCompression: [],
    interceptors: [auth],
  });
}
