/**
 * What is wrong with a server URL, in words the user can act on. A URL with a path, without a
 * scheme or with another scheme is refused before any call; when a call fails at the connection or
 * protocol level (a TLS error, a reset, an answer that is not the cacheroach API), the CLI asks the
 * same host and port once more, over the other scheme too, whether a cacheroach server answers
 * there: "it speaks plain HTTP: use http://host:port", or "this is not a cacheroach server".
 */
import * as http from "node:http";
import * as https from "node:https";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { ExitCode, GAVE_UP_HEADER, SERVER_ERROR_CODE, serverErrorCode, UserError } from "./errors.js";

/** The problem with the shape of server URL `text`, with the URL to use instead, or undefined. */
export function serverUrlProblem(text: string): { problem: string; use?: string } | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    const bare = text.replace(/^\/+/, "").replace(/\/.*$/, "");
    return { problem: "is not a URL (no scheme)", use: `http://${bare}` };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    // "localhost:13013" parses as scheme "localhost:": the user meant a host and port.
    const use = url.host ? `http://${url.host}` : `http://${text.replace(/\/.*$/, "")}`;
    return { problem: `does not start with http:// or https://`, use };
  }
  if (url.pathname.replace(/\/+$/, "") !== "" || url.search || url.hash) {
    return {
      problem: "has a path: a cacheroach server's API is at the root of its URL",
      use: `${url.protocol}//${url.host}`,
    };
  }
  return undefined;
}

/** The error code of a malformed server URL (in a config file or on the command line). */
export const BAD_SERVER_URL = "bad_server_url";

/** The error for a config whose server URL is malformed (exit 7: there is no server to reach there). */
export function badServerUrlError(text: string, where: string): UserError | undefined {
  const p = serverUrlProblem(text);
  if (!p) return undefined;
  return new UserError(
    `the server URL "${text}" in ${where} ${p.problem}; this is not a cacheroach server URL`,
    ExitCode.unavailable,
    [
      p.use ? `use ${p.use} (the scheme, host and port only)` : "use http://host:port",
      "fix it with: cacheroach auth set --server <url> --token <token>",
    ],
    BAD_SERVER_URL,
  );
}

/** What a probe of one URL found. */
type Probe = "cacheroach" | "other-http" | "no-answer";

/**
 * Asks `base` for Tokens.Current without a token over the Connect protocol: a cacheroach server
 * refuses it with its own error code header; anything else answering HTTP is another server.
 */
function probe(base: string, timeoutMs = 3000): Promise<Probe> {
  return new Promise((resolveProbe) => {
    const url = new URL("/cacheroach.v1.Tokens/Current", base);
    const mod = url.protocol === "https:" ? https : http;
    const req = mod.request(
      url,
      {
        method: "POST",
        headers: { "content-type": "application/json", "connect-protocol-version": "1" },
        timeout: timeoutMs,
        ...(url.protocol === "https:" ? { rejectUnauthorized: false } : {}),
      },
      (res) => {
        res.resume();
        resolveProbe(res.headers[SERVER_ERROR_CODE] !== undefined ? "cacheroach" : "other-http");
      },
    );
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", () => resolveProbe("no-answer"));
    req.end("{}");
  });
}

/** Failures that may mean the URL reaches something other than a cacheroach API. */
function looksLikeWrongServer(err: ConnectError): boolean {
  if (serverErrorCode(err) !== undefined) return false; // a cacheroach server answered
  const text = `${err.rawMessage} ${String((err.cause as Error | undefined)?.message ?? "")}`;
  if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ETIMEDOUT/.test(text)) return false;
  if (/EPROTO|wrong version number|ECONNRESET|EPIPE|socket hang up|HPE_|Parse Error/i.test(text)) return true;
  return [Code.Unknown, Code.Internal, Code.Unimplemented].includes(err.code) && !isCertificateError(err);
}

function isCertificateError(err: ConnectError): boolean {
  return /certificate|self[- ]signed|unable to verify/i.test(err.rawMessage);
}

/**
 * A clear error for a failed call to `server` when the URL is the problem: TLS on a plain port
 * or the other way round, something else than cacheroach at that address, an untrusted
 * certificate. Undefined when a cacheroach server answers there as asked (the failure is another).
 */
export async function diagnoseServer(err: unknown, server: string): Promise<UserError | undefined> {
  if (!(err instanceof ConnectError)) return undefined;
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    return undefined;
  }
  if (isCertificateError(err) && url.protocol === "https:") {
    return new UserError(
      `the TLS certificate of ${server} is not trusted (${err.rawMessage})`,
      ExitCode.unavailable,
      [
        "trust its CA: NODE_EXTRA_CA_CERTS=<ca.pem> cacheroach … (a --tls-self-signed server keeps its certificate in <data dir>/tls-self-signed.crt)",
      ],
      "untrusted_certificate",
    );
  }
  if (!looksLikeWrongServer(err)) return undefined;
  const other = `${url.protocol === "https:" ? "http:" : "https:"}//${url.host}`;
  const [here, there] = await Promise.all([probe(server), probe(other)]);
  if (here === "cacheroach") return undefined;
  if (there === "cacheroach") {
    const why = url.protocol === "https:" ? "speaks plain HTTP, not TLS" : "speaks TLS (HTTPS)";
    return new UserError(
      `the cacheroach server at ${url.host} ${why}: ${server} is the wrong URL`,
      ExitCode.unavailable,
      [`use ${other}`],
      "wrong_scheme",
    );
  }
  return new UserError(
    `${server} is not a cacheroach server: ${
      here === "other-http"
        ? "something else answers HTTP there"
        : "what listens there does not speak its API"
    }`,
    ExitCode.unavailable,
    ['check the server URL (the scheme, host and port of `cacheroach start`\'s "listening on" line)'],
    "not_cacheroach",
  );
}

/**
 * An interceptor that turns a call failing because `server` is the wrong URL into a clear error
 * (diagnoseServer: probed once per client), carried as the cause of an unavailable ConnectError
 * that is marked as already given up on, so no retry loop repeats it.
 */
export function diagnoseWrongServer(server: string): Interceptor {
  let diagnosis: Promise<UserError | undefined> | undefined;
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (err) {
      if (!(err instanceof ConnectError) || !(looksLikeWrongServer(err) || isCertificateError(err)))
        throw err;
      diagnosis ??= diagnoseServer(err, server);
      const found = await diagnosis;
      if (!found) throw err;
      throw new ConnectError(found.message, Code.Unavailable, { [GAVE_UP_HEADER]: "0" }, undefined, found);
    }
  };
}
