import { lookup as dnsLookup } from "node:dns/promises";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import { CacheroachError } from "../errors.js";
import type { FileRecord } from "../store/file-meta.js";
import type { FileStore } from "../store/file-store.js";
import { isValidContentType } from "../store/media-type.js";
import { errnoOf } from "../util/errno.js";
import { type AddressPolicy, addressPolicy } from "./address-policy.js";
import { writeStream } from "./stream-writer.js";
import type { Uploader, UploadManager } from "./upload-manager.js";

/** Operator limits on server-side fetches. */
export interface FetchLimits {
  /** Largest body stored; larger ones are refused (by Content-Length up front, else mid-stream). */
  readonly maxBytes: number;
  /** Whole-request deadline, headers and body. */
  readonly timeoutMs: number;
  /** Allow loopback, private, link-local and other non-public targets (off by default: SSRF). */
  readonly allowPrivate: boolean;
}

/** What the remote answered, and the stored file on 200. */
export interface FetchResult {
  readonly code: number;
  readonly message: string;
  readonly file: FileRecord | undefined;
}

/** Request headers a caller may not set (the server controls framing and the target host). */
const FORBIDDEN_HEADERS = new Set([
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "upgrade",
  "te",
  "keep-alive",
  "expect",
]);

/**
 * Downloads a URL into a file (Uploads.Fetch). Only http/https GET or POST; no redirects are
 * followed (a 3xx is reported and stores nothing, so a redirect never leads anywhere). Where the
 * request may go is decided by the address policy (address-policy.ts) on every address involved:
 * the URL's literal, every DNS answer (one non-public answer refuses the name) and the connected
 * socket's peer, before a byte is sent. An existing file's mtime is sent as If-Modified-Since;
 * anything but 200 stores nothing. Credentials in the URL authenticate the request but are
 * never stored or put in a message.
 */
export async function fetchRemote(
  uploads: UploadManager,
  files: FileStore,
  tenantId: string,
  path: string,
  request: { url: string; method: string; headers: Record<string, string> },
  limits: FetchLimits,
  uploader: Uploader,
): Promise<FetchResult> {
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    throw new CacheroachError(
      "ERR_BAD_REQUEST",
      `remote_url ${JSON.stringify(withoutUserinfo(request.url).slice(0, 100))} is not a URL`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new CacheroachError(
      "ERR_BAD_REQUEST",
      `remote_url must be http or https, not ${url.protocol.replace(":", "")}`,
    );
  }
  const method = (request.method || "GET").toUpperCase();
  if (method !== "GET" && method !== "POST")
    throw new CacheroachError("ERR_BAD_REQUEST", "remote_method must be GET or POST");
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(request.headers)) {
    const name = k.toLowerCase();
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name) || /[\r\n\0]/.test(v)) {
      throw new CacheroachError(
        "ERR_BAD_REQUEST",
        `remote header ${JSON.stringify(k.slice(0, 40))} is not a valid header`,
      );
    }
    if (FORBIDDEN_HEADERS.has(name))
      throw new CacheroachError("ERR_BAD_REQUEST", `remote header ${name} may not be set`);
    headers[name] = v;
  }
  const policy = addressPolicy(limits.allowPrivate);
  // Refuse what the URL alone shows (localhost names, IP literals) before touching anything.
  checkUrlHost(url, policy);
  const existing = await files.get(tenantId, path);
  if (existing) headers["if-modified-since"] = existing.mtime.toUTCString();

  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), limits.timeoutMs);
  try {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const lib = url.protocol === "https:" ? https : http;
      const r = lib.request(
        url,
        {
          method,
          headers,
          signal: controller.signal,
          // No agent: every fetch gets its own connection, opened only after the policy passed it.
          createConnection: (_opts, done) => {
            connectChecked(url, policy, controller.signal).then(
              (socket) => done(null, socket),
              // Node ignores the socket argument when there is an error.
              (err: Error) => done(err, undefined as unknown as net.Socket),
            );
            return undefined;
          },
        },
        resolve,
      );
      r.on("error", reject);
      r.end();
    });
    const code = res.statusCode ?? 0;
    const message = `${code} ${res.statusMessage ?? ""}`.trim();
    if (code !== 200) {
      res.resume();
      return { code, message, file: undefined };
    }
    const declared = Number(res.headers["content-length"] ?? Number.NaN);
    if (declared > limits.maxBytes) {
      res.destroy();
      throw new CacheroachError(
        "ERR_TOO_LARGE",
        `remote body of ${declared} bytes exceeds the ${limits.maxBytes}-byte fetch limit`,
      );
    }
    const type = res.headers["content-type"] ?? "";
    const file = await writeStream(uploads, tenantId, path, res, {
      maxBytes: limits.maxBytes,
      meta: { "fetched-from": storableUrl(url).slice(0, 4096) },
      // A remote type that could not be served back is dropped (the file is typed on reading).
      contentType: isValidContentType(type) ? type : "",
      precondition: undefined,
      uploader,
    });
    return { code, message, file };
  } catch (err) {
    if (err instanceof CacheroachError) throw err;
    if (controller.signal.aborted) {
      throw new CacheroachError(
        "ERR_UNAVAILABLE",
        `remote fetch did not finish within ${limits.timeoutMs} ms; nothing was stored`,
      );
    }
    throw new CacheroachError(
      "ERR_UNAVAILABLE",
      `remote fetch failed: ${errnoOf(err) ?? (err instanceof Error ? err.message : "unknown error")}`,
      { cause: err },
    );
  } finally {
    clearTimeout(timer);
  }
}

/** The URL as recorded in the file's meta: without user:password@. */
export function storableUrl(url: URL): string {
  const u = new URL(url.href);
  u.username = "";
  u.password = "";
  return u.href;
}

/** Text that failed to parse as a URL, with anything that looks like user:password@ masked. */
function withoutUserinfo(text: string): string {
  return text.replace(/^([^:/?#]*:\/\/)[^/?#]*@/, "$1***@");
}

/** The host of a URL without IPv6 brackets (what DNS and net.isIP expect). */
function bareHost(url: URL): string {
  return url.hostname.replace(/^\[|\]$/g, "");
}

/** Throws the policy refusal for a localhost name or a non-public IP literal in the URL. */
function checkUrlHost(url: URL, policy: AddressPolicy): void {
  const host = bareHost(url);
  policy.checkHostname(host);
  if (net.isIP(host)) policy.checkAddress(host, host, "literal");
}

/**
 * How a fetch resolves and connects. Production uses the system resolver and plain TCP; tests
 * substitute them to make a name resolve, or a connection land, where the test needs.
 */
export interface Dialer {
  lookup(host: string): Promise<readonly { address: string; family: number }[]>;
  connect(address: string, port: number): net.Socket;
}

const systemDialer: Dialer = {
  lookup: (host) => dnsLookup(host, { all: true, verbatim: true }),
  connect: (address, port) => net.connect({ host: address, port }),
};

/**
 * Opens the connection for `url` under `policy`: resolves the name once, refuses it if ANY answer
 * is not allowed (a name with one private answer is a rebinding risk), connects to the checked
 * addresses in order, and checks the connected socket's peer address again before returning it
 * (TLS is layered on top only then). Nothing is written to a socket that has not passed.
 */
export async function connectChecked(
  url: URL,
  policy: AddressPolicy,
  signal: AbortSignal,
  dialer: Dialer = systemDialer,
): Promise<net.Socket> {
  const host = bareHost(url);
  const port = Number(url.port || (url.protocol === "https:" ? 443 : 80));
  checkUrlHost(url, policy);
  const literal = net.isIP(host) !== 0;
  const answers = literal ? [{ address: host, family: net.isIP(host) }] : await dialer.lookup(host);
  if (answers.length === 0) throw Object.assign(new Error(`${host} has no address`), { code: "ENOTFOUND" });
  for (const a of answers) policy.checkAddress(host, a.address, literal ? "literal" : "dns");
  let lastError: unknown;
  for (const a of answers) {
    signal.throwIfAborted();
    let socket: net.Socket;
    try {
      socket = await openSocket(dialer, a.address, port, signal);
    } catch (err) {
      lastError = err;
      continue; // the next address may answer
    }
    try {
      policy.checkAddress(host, socket.remoteAddress ?? "", "socket");
      signal.throwIfAborted();
    } catch (err) {
      socket.destroy();
      throw err;
    }
    if (url.protocol !== "https:") return socket;
    return tls.connect({
      socket,
      host, // what the certificate is checked against
      ...(literal ? {} : { servername: host }), // SNI carries names only
      ALPNProtocols: ["http/1.1"],
    });
  }
  throw lastError;
}

/** Connects one socket, resolving once connected; an abort destroys it. */
function openSocket(dialer: Dialer, address: string, port: number, signal: AbortSignal): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = dialer.connect(address, port);
    const onAbort = () => socket.destroy(signal.reason as Error);
    const onError = (err: Error) => {
      signal.removeEventListener("abort", onAbort);
      reject(err);
    };
    signal.addEventListener("abort", onAbort, { once: true });
    socket.once("error", onError);
    socket.once("connect", () => {
      signal.removeEventListener("abort", onAbort);
      socket.removeListener("error", onError);
      resolve(socket);
    });
  });
}
