import { networkInterfaces } from "node:os";
import type { HttpRequest } from "../net/node-http.js";
import { header } from "../net/node-http.js";

/** What {@link Site} is built from (validated configuration). */
export interface SiteOptions {
  /** The operator's public URL (origin only), if configured. */
  readonly publicUrl: URL | undefined;
  /** Host names (lower-case, no port) allowed to show active content inline. */
  readonly activeContentHosts: ReadonlySet<string>;
  /** True when `host` (lower-case, no port) is a configured virtual host (not the "*" fallback). */
  readonly isVHost: (host: string) => Promise<boolean>;
  /** Every request counts as HTTPS (the operator's --assume-secure: a TLS proxy in front). */
  readonly assumeSecure?: boolean;
}

/** A Host header split and validated: a DNS name or IP literal, and an optional port. */
interface HostHeader {
  /** Lower-cased name; IPv6 literals keep their brackets. */
  readonly name: string;
  readonly port: number | undefined;
  /** name[:port] as it should appear in a URL. */
  readonly authority: string;
}

// A host name or IPv4 literal, or a bracketed IPv6 literal, then an optional port: nothing else
// (no userinfo, path or spaces) may reach a URL built from it.
const HOST = /^(\[[0-9a-f:.]+\]|[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?)(?::(\d{1,5}))?$/;

/**
 * How clients reach this server, and the decisions that depend on it: which origins are this
 * server's own (same-origin checks), which base URL a downloaded CLI config names, whether
 * cookies must be Secure, and which hosts may show active content inline.
 *
 * Nothing here trusts X-Forwarded-* headers: the operator declares a public URL instead.
 */
export class Site {
  private bound: { host: string; port: number } | undefined;

  constructor(private readonly options: SiteOptions) {}

  /** Records the address the listener bound (known only once it listens; port 0 picks one). */
  bind(host: string, port: number): void {
    this.bound = { host, port };
  }

  /** The configured public URL, if any. */
  get publicUrl(): URL | undefined {
    return this.options.publicUrl;
  }

  /** True when the browser's `Origin` value names this server as `req` reached it. */
  isOwnOrigin(req: HttpRequest, origin: string): boolean {
    let given: string;
    try {
      given = new URL(origin).origin; // "null" (opaque origins) throws: never our own
    } catch {
      return false;
    }
    if (given === "null") return false;
    const pub = this.options.publicUrl;
    if (pub && given === pub.origin) return true;
    const host = hostOf(req);
    if (!host) return false;
    const own = [`${schemeOf(req)}://${host.authority}`];
    // Behind a TLS proxy the browser says https while this hop is plain HTTP.
    if (pub?.protocol === "https:" || this.options.assumeSecure) own.push(`https://${host.authority}`);
    return own.some((o) => {
      try {
        return new URL(o).origin === given;
      } catch {
        return false;
      }
    });
  }

  /**
   * The base URL a CLI config should name for `req`: the public URL when configured; else the
   * request's Host if it is this server's bind address (or, bound to all interfaces, one of this
   * machine's addresses) or a configured virtual host, on the listening port; else the bind
   * address. A forged Host can therefore never point a CLI at another server.
   */
  async baseUrl(req: HttpRequest): Promise<string> {
    const pub = this.options.publicUrl;
    if (pub) return pub.origin;
    const bound = this.bound ?? { host: "127.0.0.1", port: 0 };
    const scheme = this.options.assumeSecure ? "https" : schemeOf(req);
    const host = hostOf(req);
    const defaultPort = scheme === "https" ? 443 : 80;
    if (host && (host.port ?? defaultPort) === bound.port) {
      if (isBindAddress(host.name, bound.host) || (await this.options.isVHost(host.name)))
        return `${scheme}://${host.authority}`;
    }
    if (host && host.port === undefined && (await this.options.isVHost(host.name)))
      return `${scheme}://${host.name}`;
    return `${scheme}://${urlHost(bound.host)}:${bound.port}`;
  }

  /**
   * True when cookies set on answers to `req` must be Secure (TLS, an https public URL, or the
   * operator's --assume-secure).
   */
  secureCookies(req: HttpRequest): boolean {
    return (
      schemeOf(req) === "https" ||
      this.options.publicUrl?.protocol === "https:" ||
      this.options.assumeSecure === true
    );
  }

  /** True when the host `req` names may show HTML, SVG, XML and scripts inline. */
  inlineActiveContent(req: HttpRequest): boolean {
    const host = hostOf(req);
    return host !== undefined && this.options.activeContentHosts.has(host.name);
  }
}

/** The request's Host (HTTP/1.1) or :authority (HTTP/2), validated; undefined if absent or malformed. */
export function hostOf(req: HttpRequest): HostHeader | undefined {
  const raw = (header(req, "host") ?? header(req, ":authority"))?.trim().toLowerCase();
  const m = raw === undefined ? null : HOST.exec(raw);
  if (!m) return undefined;
  const port = m[2] === undefined ? undefined : Number(m[2]);
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  return { name: m[1]!, port, authority: raw! };
}

/** "https" when the request came over TLS, else "http". */
function schemeOf(req: HttpRequest): "http" | "https" {
  const sock = req.socket as { encrypted?: boolean } | undefined;
  return sock?.encrypted ? "https" : "http";
}

/** True when `name` (from a Host header) is the address this server is bound to. */
function isBindAddress(name: string, bindHost: string): boolean {
  const bare = name.startsWith("[") ? name.slice(1, -1) : name;
  if (bare === bindHost.toLowerCase()) return true;
  const loopback = bindHost === "127.0.0.1" || bindHost === "::1";
  const wildcard = bindHost === "0.0.0.0" || bindHost === "::";
  if ((loopback || wildcard) && bare === "localhost") return true;
  if (!wildcard) return false;
  for (const list of Object.values(networkInterfaces()))
    for (const a of list ?? []) if (a.address.toLowerCase() === bare) return true;
  return false;
}

/** A bind address as a URL host: all interfaces → loopback, IPv6 in brackets. */
function urlHost(bindHost: string): string {
  if (bindHost === "0.0.0.0" || bindHost === "") return "127.0.0.1";
  if (bindHost === "::") return "[::1]";
  return bindHost.includes(":") ? `[${bindHost}]` : bindHost;
}
