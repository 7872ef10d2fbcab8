/**
 * What checking a session's whole chain of authority costs (security issue, item 1):
 *
 *   node --import tsx scripts/with-pg.ts -- node --import tsx bench/auth-chain.ts
 *
 * Prints, for chains of depth 0–3: the cache-miss check (SessionStore.isActive, one recursive
 * query) next to the single-row lookup it replaced, and the steady-state per-request cost of
 * Authorizer.authenticate (a cached verification: no database round trip). Never part of npm test.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Principals, SessionSchema, Tenants, Tokens } from "@cacheroach/proto";
import pg from "pg";
import { Authorizer } from "../packages/server/src/auth/authorizer.js";
import { TokenSigner } from "../packages/server/src/auth/token-signer.js";
import { Db } from "../packages/server/src/db/db.js";
import { PrincipalStore } from "../packages/server/src/store/principal-store.js";
import { SessionStore } from "../packages/server/src/store/session-store.js";
import { startTestServer } from "../packages/server/src/testing.js";

const ROUNDS = 2000;

const ts = await startTestServer();
const db = new Db({ url: ts.databaseUrl, maxConnections: 4 });
const raw = new pg.Client({ connectionString: ts.databaseUrl });
await raw.connect();
try {
  const tenant = (await ts.client(Tenants, ts.superToken).ensure({ tenant: { label: "bench" } })).tenant!.id;
  // A chain: super → grant 1 → (login 1 issues) grant 2 → (login 2 issues) grant 3.
  const tokens: { depth: number; id: string; jwt: string }[] = [];
  let issuerToken = ts.superToken;
  for (let depth = 1; depth <= 3; depth++) {
    const p = await ts.client(Principals, ts.superToken).ensure({
      principal: { claimsJson: JSON.stringify({ name: `u${depth}` }) },
    });
    const id = p.principal!.id;
    const grant = await ts.client(Tokens, issuerToken).issue({
      template: create(SessionSchema, {
        principalId: id,
        capabilities: { read: true, delegate: true },
        scope: { kind: { case: "onLocation", value: { tenantId: tenant, path: "/*" } } },
        expiresAt: timestampFromDate(new Date(Date.now() + (50 - depth) * 60_000)),
      }),
    });
    tokens.push({ depth, id: grant.issued!.id, jwt: grant.token!.jwt });
    const login = await ts.client(Tokens, ts.superToken).issue({
      template: create(SessionSchema, {
        principalId: id,
        capabilities: { read: true, delegate: true },
        scope: { kind: { case: "onPrincipal", value: id } },
        expiresAt: timestampFromDate(new Date(Date.now() + 55 * 60_000)),
      }),
    });
    issuerToken = login.token!.jwt;
  }
  const superId = (await ts.client(Tokens, ts.superToken).current({})).id;

  const time = async (fn: () => Promise<unknown>): Promise<number> => {
    for (let i = 0; i < 50; i++) await fn();
    const t0 = performance.now();
    for (let i = 0; i < ROUNDS; i++) await fn();
    return ((performance.now() - t0) / ROUNDS) * 1000;
  };
  const uncached = new SessionStore(db, 1); // 1 ms cache: every call queries
  const sleepPast = () => new Promise((r) => setTimeout(r, 2));
  const rows: string[] = [];
  rows.push("| chain depth | old lookup (µs) | chain check, cache miss (µs) |");
  rows.push("| ---: | ---: | ---: |");
  for (const { depth, id } of [{ depth: 0, id: superId }, ...tokens]) {
    const old = await time(() =>
      raw.query("SELECT (revoked_at IS NULL AND expires_at > now()) AS ok FROM sessions WHERE id = $1", [id]),
    );
    const chain = await time(async () => {
      await sleepPast();
      return uncached.isActive(id);
    });
    const sleepCost = await time(sleepPast);
    rows.push(`| ${depth} | ${old.toFixed(0)} | ${(chain - sleepCost).toFixed(0)} |`);
  }
  // Steady state: what a request pays to authenticate a token it presented a moment ago.
  const signer = new TokenSigner([ts.signingKey]);
  const cached = new SessionStore(db, 5000);
  const authz = new Authorizer(signer, cached, new PrincipalStore(db), 5000);
  const deepest = tokens[tokens.length - 1]!;
  await authz.authenticate(deepest.jwt);
  const steady = await time(() => authz.authenticate(deepest.jwt));
  console.log(rows.join("\n"));
  console.log(
    `\nsteady state (cached, depth 3): ${steady.toFixed(1)} µs per authenticate, no database round trip`,
  );
} finally {
  await raw.end();
  await db.close();
  await ts.close();
}
