/**
 * The API client: Connect (binary protobuf over fetch) to the same services the CLI uses, with
 * the session's token as `Authorization: Bearer`. RPCs never read cookies (docs/security.md §5),
 * so a browser login always ends with a token held in this page (see login-state.ts).
 */
import { Files, Principals, Tenants, Tokens, Uploads, VHosts } from "@cacheroach/proto";
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";

/** Typed clients of every service the UI calls, all presenting one token. */
export interface Api {
  readonly token: string;
  readonly files: Client<typeof Files>;
  readonly uploads: Client<typeof Uploads>;
  readonly tenants: Client<typeof Tenants>;
  readonly tokens: Client<typeof Tokens>;
  readonly principals: Client<typeof Principals>;
  readonly vhosts: Client<typeof VHosts>;
}

/** A transport to this page's own server presenting `token` (none for public calls). */
export function transportFor(token: string | undefined): Transport {
  const bearer: Interceptor = (next) => (req) => {
    if (token) req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  return createConnectTransport({
    baseUrl: location.origin,
    useBinaryFormat: true,
    interceptors: [bearer],
    // Never send the cookie with an RPC: the token is the credential.
    fetch: (input, init) => fetch(input, { ...init, credentials: "omit" }),
  });
}

/** Clients of every service for `token`. */
export function apiFor(token: string): Api {
  const t = transportFor(token);
  return {
    token,
    files: createClient(Files, t),
    uploads: createClient(Uploads, t),
    tenants: createClient(Tenants, t),
    tokens: createClient(Tokens, t),
    principals: createClient(Principals, t),
    vhosts: createClient(VHosts, t),
  };
}
