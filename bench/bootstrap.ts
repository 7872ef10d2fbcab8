/**
 * Logging in to the server under test the way an operator does (`cacheroach bootstrap`): a short-
 * lived token signed with the server's key creates a "root" principal and issues it a durable super
 * session; its JWT goes into a CLI config file (`{server, token, session, defaultTenant}`) that
 * every CLI run of the benchmark uses, and into the `Authorization: Bearer` header of curl.
 *
 * Also creates the benchmark's tenants (one per row family, since chunk dedup is per tenant: a
 * "cold" upload must go to a tenant that has none of the chunks) and maps a virtual host to each
 * tenant that curl talks to.
 */
import type { DescService, JsonValue } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type ClientTransport, makeTransport, saveConfig, sessionToJson } from "@cacheroach/cli";
import { Principals, Tenants, Tokens, Uploads, VHosts } from "@cacheroach/proto";
import { mintBootstrapToken } from "@cacheroach/server";
import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import type { Cleanup } from "./cleanup.js";
import { run } from "./exec.js";

/** A super session on the server under test. */
export interface BenchSession {
  /** The super session's JWT. */
  readonly token: string;
  /** The session as protobuf JSON (for the CLI config). */
  readonly sessionJson: JsonValue;
  /** A client of `service` presenting the token (connect over HTTP/1.1, like the CLI's default). */
  client<S extends DescService>(service: S): Client<S>;
}

/** Creates the root principal and a super session valid for a day; clients are closed by clean-up. */
export async function bootstrapSession(
  url: string,
  signingKey: Uint8Array,
  cleanup: Cleanup,
): Promise<BenchSession> {
  const transports: ClientTransport[] = [];
  cleanup.add("RPC connections", () => {
    for (const t of transports) t.close();
  });
  const clientWith = <S extends DescService>(service: S, token: string): Client<S> => {
    const bearer: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    };
    const t = makeTransport(url, "connect-h1", [bearer]);
    transports.push(t);
    return createClient(service, t.transport);
  };
  const boot = await mintBootstrapToken(signingKey, 120);
  const principal = await clientWith(Principals, boot).ensure({
    principal: { claimsJson: JSON.stringify({ name: "root", source: "bench" }) },
  });
  const issued = await clientWith(Tokens, boot).issue({
    template: {
      principalId: principal.principal!.id,
      capabilities: { read: true, write: true, delegate: true, pii: true, fetch: true },
      scope: { kind: { case: "superToken", value: true } },
      expiresAt: timestampFromDate(new Date(Date.now() + 24 * 3600_000)),
      note: "bench super session",
    },
  });
  const token = issued.token!.jwt;
  const session = issued.issued!;
  const clients = new Map<DescService, unknown>();
  return {
    token,
    sessionJson: sessionToJson(session),
    client<S extends DescService>(service: S): Client<S> {
      let c = clients.get(service) as Client<S> | undefined;
      if (!c) {
        c = clientWith(service, token);
        clients.set(service, c);
      }
      return c;
    },
  };
}

/** Creates (or finds) a tenant by label; returns its id. */
export async function ensureTenant(session: BenchSession, label: string): Promise<string> {
  const res = await session.client(Tenants).ensure({ tenant: { label } });
  return res.tenant!.id;
}

/** Maps `host` to `tenantId`. */
export async function mapVHost(session: BenchSession, host: string, tenantId: string): Promise<void> {
  await session.client(VHosts).ensure({ vhost: { vhost: host, tenantId } });
}

/** Writes the CLI config file for the session (mode 0600). */
export async function writeCliConfig(
  path: string,
  server: string,
  session: BenchSession,
  defaultTenant: string,
): Promise<void> {
  await saveConfig(path, { server, token: session.token, session: session.sessionJson, defaultTenant });
}

/**
 * Waits (at most 10 s) until each virtual host serves its tenant: a probe file is written to each
 * tenant through the API and fetched through the host (the server reloads its vhost map every 500 ms).
 */
export async function waitForVHosts(
  session: BenchSession,
  url: string,
  hosts: [string, string][],
): Promise<void> {
  for (const [host, tenantId] of hosts) {
    const path = `/probe-${host}.txt`;
    await session
      .client(Uploads)
      .begin({ tenantId, path, committed: { case: "contents", value: Buffer.from(host) } });
    for (let i = 0; ; i++) {
      const r = await run(
        "curl",
        [
          "-s",
          "-o",
          "/dev/null",
          "-w",
          "%{http_code}",
          "-H",
          `Authorization: Bearer ${session.token}`,
          "-H",
          `Host: ${host}`,
          `${url}${path}`,
        ],
        { allowFailure: true, timeoutMs: 10_000 },
      );
      if (r.stdout === "200") break;
      if (i >= 50) throw new Error(`virtual host ${host} is not served after 10 s (last status ${r.stdout})`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}
