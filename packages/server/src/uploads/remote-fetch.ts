import { lookup as dnsLookup } from "node:dns";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import { StoreError } from "../errors.js";
import { isValidContentType } from "../http/content-type.js";
import type { FileRecord } from "../store/file-meta.js";
import type { FileStore } from "../store/file-store.js";
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
 * followed (a 3xx is reported, so a redirect can never lead to a private address); every address
 * the host resolves to is checked before connecting and the connection uses the checked address;
 * an existing file's mtime is sent as If-Modified-Since, and anything but 200 stores nothing.
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
    throw new StoreError(
      "ERR_BAD_REQUEST",
      `remote_url ${JSON.stringify(request.url.slice(0, 100))} is not a URL`,
    );
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new StoreError(
      "ERR_BAD_REQUEST",
      `remote_url must be http or https, not ${url.protocol.replace(":", "")}`,
    );
  }
  const method = (request.method || "GET").toUpperCase();
  if (method !== "GET" && method !== "POST")
    throw new StoreError("ERR_BAD_REQUEST", "remote_method must be GET or POST");
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(request.headers)) {
    const name = k.toLowerCase();
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/.test(name) || /[\r\n\0]/.test(v)) {
      throw new StoreError(
        "ERR_BAD_REQUEST",
        `remote header ${JSON.stringify(k.slice(0, 40))} is not a valid header`,
      );
    }
    if (FORBIDDEN_HEADERS.has(name))
      throw new StoreError("ERR_BAD_REQUEST", `remote header ${name} may not be set`);
    headers[name] = v;
  }
  const existing = await files.stat(tenantId, path).catch(() => undefined);
  if (existing) headers["if-modified-since"] = existing.mtime.toUTCString();
  const literal = url.hostname.replace(/^\[|\]$/g, "");
  if (net.isIP(literal) && !limits.allowPrivate) checkAddress(literal);

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
          lookup: limits.allowPrivate ? undefined : safeLookup,
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
      throw new StoreError(
        "ERR_TOO_LARGE",
        `remote body of ${declared} bytes exceeds the ${limits.maxBytes}-byte fetch limit`,
      );
    }
    const type = res.headers["content-type"] ?? "";
    const file = await writeStream(uploads, tenantId, path, res, {
      maxBytes: limits.maxBytes,
      meta: { "fetched-from": url.toString().slice(0, 4096) },
      // A remote type that could not be served back is dropped (the file is typed on reading).
      contentType: isValidContentType(type) ? type : "",
      precondition: undefined,
      uploader,
    });
    return { code, message, file };
  } catch (err) {
    if (err instanceof StoreError) throw err;
    if (controller.signal.aborted) {
      throw new StoreError(
        "ERR_UNAVAILABLE",
        `remote fetch did not finish within ${limits.timeoutMs} ms; nothing was stored`,
      );
    }
    const e = err as { code?: string; message?: string };
    if (e.code === "ERR_SSRF") throw new StoreError("ERR_PERMISSION_DENIED", e.message ?? "target refused");
    throw new StoreError(
      "ERR_UNAVAILABLE",
      `remote fetch failed: ${e.code ?? e.message ?? "unknown error"}`,
      { cause: err },
    );
  } finally {
    clearTimeout(timer);
  }
}

/** dns.lookup that refuses non-public addresses, so the connection uses only a checked address. */
const safeLookup: net.LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, "", 0);
    const list = addresses as unknown as { address: string; family: number }[];
    try {
      for (const a of list) checkAddress(a.address);
    } catch (e) {
      const ssrf = Object.assign(new Error((e as Error).message), { code: "ERR_SSRF" });
      return callback(ssrf, "", 0);
    }
    if ((options as { all?: boolean }).all)
      return (callback as unknown as (e: null, a: typeof list) => void)(null, list);
    const first = list[0]!;
    callback(null, first.address, first.family);
  });
};

/** Throws when an address is loopback, private, link-local, CGNAT, unspecified, multicast or reserved. */
export function checkAddress(address: string): void {
  const why = nonPublicReason(address);
  if (why) {
    throw new StoreError(
      "ERR_PERMISSION_DENIED",
      `fetch target ${address} is ${why}; refused (the operator can allow private targets)`,
    );
  }
}

function nonPublicReason(address: string): string | undefined {
  let a = address.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (mapped) a = mapped[1]!;
  if (net.isIPv4(a)) {
    const [x, y] = a.split(".").map(Number) as [number, number];
    if (x === 127) return "a loopback address";
    if (x === 10 || (x === 172 && y >= 16 && y <= 31) || (x === 192 && y === 168)) return "a private address";
    if (x === 169 && y === 254) return "a link-local address";
    if (x === 100 && y >= 64 && y <= 127) return "a shared (CGNAT) address";
    if (x === 0) return "an unspecified address";
    if (x >= 224) return "a multicast or reserved address";
    return undefined;
  }
  if (a === "::1") return "a loopback address";
  if (a === "::") return "an unspecified address";
  if (/^f[cd]/.test(a)) return "a private (ULA) address";
  if (/^fe[89ab]/.test(a)) return "a link-local address";
  if (a.startsWith("ff")) return "a multicast address";
  return undefined;
}
