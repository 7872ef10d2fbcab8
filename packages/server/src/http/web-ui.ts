import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { CacheroachError } from "../errors.js";
import { header } from "../net/node-http.js";
import { MethodNotAllowed } from "./error-answer.js";
import type { Incoming } from "./request-context.js";

/** Where the web UI is served. */
export const UI_PREFIX = "/_/ui/";

/**
 * The UI's Content-Security-Policy: its own scripts, styles and API only, no inline code, no
 * framing, no form posts, no plugins. Images load from this origin (previews through signed URLs).
 */
export const UI_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
  "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** Headers every UI response carries. */
const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy": UI_CSP,
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  // Signed URLs carry a token in their query: never leak one in a Referer.
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
};

const TYPES: Readonly<Record<string, string>> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
};

/** One built file, in memory with its precompressed copies. */
interface Asset {
  readonly type: string;
  readonly body: Buffer;
  readonly gzip: Buffer | undefined;
  readonly br: Buffer | undefined;
  readonly etag: string;
  /** Content-hashed names never change: cached for a year. index.html is revalidated. */
  readonly immutable: boolean;
}

/**
 * The built web UI (packages/web/dist/ui, written by `npm run build`), loaded once at start-up
 * and served from memory at /_/ui/: index.html revalidated on every load, content-hashed assets
 * cached as immutable, a precompressed copy (br, else gzip) when the browser accepts it, and a
 * strict Content-Security-Policy on everything. A server built without the UI answers 404
 * saying so.
 */
export class WebUi {
  private constructor(
    private readonly assets: ReadonlyMap<string, Asset> | undefined,
    private readonly dir: string,
  ) {}

  /** Loads the UI built in `dir` (default: the @cacheroach/web package's dist/ui). */
  static load(dir = WebUi.defaultDir()): WebUi {
    const manifestPath = join(dir, "manifest.json");
    if (!existsSync(manifestPath)) return new WebUi(undefined, dir);
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8")) as { files: Record<string, unknown> };
    const assets = new Map<string, Asset>();
    for (const name of Object.keys(manifest.files)) {
      const body = readFileSync(join(dir, name));
      const optional = (ext: string) =>
        existsSync(join(dir, name + ext)) ? readFileSync(join(dir, name + ext)) : undefined;
      const ext = name.slice(name.lastIndexOf("."));
      assets.set(name, {
        type: TYPES[ext] ?? "application/octet-stream",
        body,
        gzip: optional(".gz"),
        br: optional(".br"),
        etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 22)}"`,
        immutable: name !== "index.html",
      });
    }
    return new WebUi(assets, dir);
  }

  /** The built UI of the @cacheroach/web workspace package. */
  static defaultDir(): string {
    try {
      const pkg = createRequire(import.meta.url).resolve("@cacheroach/web/package.json");
      return join(dirname(pkg), "dist", "ui");
    } catch {
      return join(dirname(new URL(import.meta.url).pathname), "../../../web/dist/ui");
    }
  }

  /** True when a built UI was found. */
  get available(): boolean {
    return this.assets !== undefined;
  }

  /** Answers a request whose path is /_/ui or starts with /_/ui/. */
  serve(incoming: Incoming): void {
    const { req, res, path } = incoming;
    if (req.method !== "GET" && req.method !== "HEAD")
      throw new MethodNotAllowed("the web UI answers GET and HEAD only", "GET, HEAD");
    if (path === "/_/ui") {
      res.writeHead(301, { location: UI_PREFIX, "content-length": "0", ...SECURITY_HEADERS });
      res.end();
      return;
    }
    if (!this.assets)
      throw new CacheroachError(
        "ERR_NOT_FOUND",
        `the web UI is not built on this server (no ${this.dir}): run npm run build`,
      );
    const name = path === UI_PREFIX ? "index.html" : path.slice(UI_PREFIX.length);
    const asset = this.assets.get(name);
    if (!asset) throw new CacheroachError("ERR_NOT_FOUND", `no such web UI file ${path}`);
    const headers: Record<string, string> = {
      ...SECURITY_HEADERS,
      "content-type": asset.type,
      "cache-control": asset.immutable ? "public, max-age=31536000, immutable" : "no-cache",
      etag: asset.etag,
      vary: "accept-encoding",
    };
    if (
      header(req, "if-none-match")
        ?.split(/\s*,\s*/)
        .includes(asset.etag)
    ) {
      res.writeHead(304, headers);
      res.end();
      return;
    }
    const accepts = (header(req, "accept-encoding") ?? "").toLowerCase();
    let body = asset.body;
    if (asset.br && /\bbr\b/.test(accepts)) {
      body = asset.br;
      headers["content-encoding"] = "br";
    } else if (asset.gzip && /\bgzip\b/.test(accepts)) {
      body = asset.gzip;
      headers["content-encoding"] = "gzip";
    }
    headers["content-length"] = String(body.length);
    res.writeHead(200, headers);
    if (req.method === "HEAD") res.end();
    else res.end(body);
  }
}
