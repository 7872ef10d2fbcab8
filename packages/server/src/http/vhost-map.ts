import type { VHostStore } from "../store/vhost-store.js";

/**
 * Host name → tenant, loaded from the vhosts table and reloaded when older than `ttlMs`, so
 * changes made on any instance are served everywhere within seconds. Unknown hosts fall back to
 * the "*" entry.
 */
export class VHostMap {
  private map = new Map<string, string>();
  private loadedAt = 0;
  private loading: Promise<void> | undefined;

  constructor(
    private readonly store: VHostStore,
    private readonly ttlMs: number,
  ) {}

  /** The tenant for a Host header value (port stripped, case-folded), or undefined. */
  async resolve(hostHeader: string | undefined): Promise<string | undefined> {
    if (Date.now() - this.loadedAt > this.ttlMs) await this.reload();
    const host = normalize(hostHeader ?? "");
    return this.map.get(host) ?? this.map.get("*");
  }

  /** True when `host` (lower-case, no port) has its own entry (the "*" fallback does not count). */
  async has(host: string): Promise<boolean> {
    if (Date.now() - this.loadedAt > this.ttlMs) await this.reload();
    return host !== "*" && this.map.has(host);
  }

  private reload(): Promise<void> {
    this.loading ??= this.store
      .list()
      .then((list) => {
        this.map = new Map(list.map((v) => [v.host, v.tenantId]));
        this.loadedAt = Date.now();
      })
      .finally(() => {
        this.loading = undefined;
      });
    return this.loading;
  }
}

/** Strips a port (and IPv6 brackets) and lower-cases a Host header. */
export function normalize(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith("[")) return h.slice(0, h.indexOf("]") + 1);
  const colon = h.lastIndexOf(":");
  return colon >= 0 ? h.slice(0, colon) : h;
}
