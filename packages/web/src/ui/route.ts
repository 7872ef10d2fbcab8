/**
 * Where the page is, kept in the URL's fragment (so reloads and the Back button work and the
 * server needs only one page): "#/files/<tenant id>/<folder path>" or "#/admin/<section>".
 */
export type Route =
  | { kind: "files"; tenantId: string | undefined; dir: string }
  | { kind: "admin"; section: AdminSection };

export type AdminSection = "tenants" | "principals" | "sessions" | "vhosts";
const SECTIONS: readonly AdminSection[] = ["tenants", "principals", "sessions", "vhosts"];

/** The route of a location hash. */
export function parseRoute(hash: string): Route {
  const parts = hash.replace(/^#\/?/, "").split("?")[0]!.split("/");
  if (parts[0] === "admin") {
    const s = parts[1] as AdminSection;
    return { kind: "admin", section: SECTIONS.includes(s) ? s : "tenants" };
  }
  if (parts[0] === "files" && parts[1]) {
    const segs = parts.slice(2).filter(Boolean).map(safeDecode);
    return { kind: "files", tenantId: parts[1], dir: segs.length ? `/${segs.join("/")}` : "/" };
  }
  return { kind: "files", tenantId: undefined, dir: "/" };
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The hash of a route. */
export function routeHash(r: Route): string {
  if (r.kind === "admin") return `#/admin/${r.section}`;
  if (!r.tenantId) return "#/files";
  const segs = r.dir.split("/").filter(Boolean).map(encodeURIComponent);
  return `#/files/${r.tenantId}/${segs.join("/")}`;
}
