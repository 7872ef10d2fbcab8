import ipaddr from "ipaddr.js";
import { CacheroachError } from "../errors.js";

/**
 * Which network addresses a server-side fetch (Uploads.Fetch) may reach. By default only public
 * unicast addresses pass: loopback, private, link-local (the cloud metadata service at
 * 169.254.169.254), carrier-grade NAT, multicast, broadcast, unspecified, documentation and every
 * other special-purpose range are refused, so a caller with the fetch capability cannot make the
 * server reach its own network (SSRF). The ranges come from ipaddr.js, a maintained registry of
 * IANA special-purpose blocks, not from a hand list.
 *
 * IPv6 forms that carry an IPv4 address (IPv4-mapped, IPv4-compatible, SIIT, NAT64, 6to4, Teredo)
 * are judged by the IPv4 address they lead to, so `[::ffff:7f00:1]` is loopback like 127.0.0.1.
 * IPv4 literals in any notation inet_aton accepts (2130706433, 0x7f.1, 017700000001) classify as
 * their dotted form.
 */

/** What an address is, for the policy and for the refusal message. */
export interface AddressClass {
  /** True only for public unicast addresses: the ones a fetch may reach by default. */
  readonly isPublic: boolean;
  /** ipaddr.js range name ("unicast", "loopback", "linkLocal", …) or "invalid". */
  readonly range: string;
  /** For people: "a loopback address", "a link-local address (cloud metadata service)". */
  readonly description: string;
  /** The IPv4 address an IPv6 form leads to, when it carries one. */
  readonly embedded?: string;
}

/** Human descriptions of ipaddr.js range names; an unlisted non-unicast range still fails. */
const DESCRIPTIONS: Readonly<Record<string, string>> = {
  unspecified: "an unspecified address",
  broadcast: "the broadcast address",
  multicast: "a multicast address",
  linkLocal: "a link-local address",
  loopback: "a loopback address",
  carrierGradeNat: "a shared (carrier-grade NAT) address",
  private: "a private address",
  uniqueLocal: "a unique-local (private) address",
  deprecatedSiteLocal: "a site-local (private) address",
  reserved: "a reserved or documentation address",
  benchmarking: "a benchmarking address",
  discard: "a discard-only address",
  rfc6052: "a local-use NAT64 address",
};

const METADATA_SERVICE = "169.254.169.254";

// IPv6 prefixes that embed an IPv4 address (RFC 4291, 6052, 3056, 4380). Judged by that address.
const IPV4_COMPATIBLE = ipaddr.IPv6.parseCIDR("::/96");
const NAT64_WELL_KNOWN = ipaddr.IPv6.parseCIDR("64:ff9b::/96");
const SIX_TO_FOUR = ipaddr.IPv6.parseCIDR("2002::/16");
const TEREDO = ipaddr.IPv6.parseCIDR("2001::/32");

/**
 * Classifies an IP address in any textual form (IPv4 in any inet_aton notation, IPv6 with or
 * without brackets or zone). Anything that is not an IP address is not public.
 */
export function classifyAddress(text: string): AddressClass {
  const bare = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  if (!ipaddr.isValid(bare)) {
    return { isPublic: false, range: "invalid", description: "not an IP address" };
  }
  const addr = ipaddr.parse(bare);
  return addr.kind() === "ipv4" ? classifyV4(addr as ipaddr.IPv4) : classifyV6(addr as ipaddr.IPv6);
}

function classifyV4(addr: ipaddr.IPv4): AddressClass {
  const range = addr.range();
  if (range === "unicast") return { isPublic: true, range, description: "a public address" };
  let description = DESCRIPTIONS[range] ?? `a special-purpose address (${range})`;
  if (addr.toString() === METADATA_SERVICE) description += " (cloud metadata service)";
  return { isPublic: false, range, description };
}

function classifyV6(addr: ipaddr.IPv6): AddressClass {
  const embedded = embeddedIPv4(addr);
  if (embedded) {
    const inner = embedded.map(classifyV4);
    const bad = inner.find((c) => !c.isPublic);
    const shown = embedded.map(String).join(", ");
    if (bad) return { ...bad, embedded: shown };
    return { isPublic: true, range: "unicast", description: "a public address", embedded: shown };
  }
  const range = addr.range();
  if (range === "unicast") return { isPublic: true, range, description: "a public address" };
  return {
    isPublic: false,
    range,
    description: DESCRIPTIONS[range] ?? `a special-purpose address (${range})`,
  };
}

/** The IPv4 addresses an IPv6 address leads to, or undefined when it carries none. */
function embeddedIPv4(addr: ipaddr.IPv6): ipaddr.IPv4[] | undefined {
  const p = addr.parts;
  const v4 = (hi: number, lo: number) => new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
  const range = addr.range();
  // ::ffff:a.b.c.d (mapped) and ::ffff:0:a.b.c.d (SIIT, RFC 6145).
  if (range === "ipv4Mapped" || range === "rfc6145") return [v4(p[6]!, p[7]!)];
  // ::a.b.c.d (deprecated IPv4-compatible); :: and ::1 are themselves, not IPv4.
  if (addr.match(IPV4_COMPATIBLE) && range !== "unspecified" && range !== "loopback") {
    return [v4(p[6]!, p[7]!)];
  }
  if (addr.match(NAT64_WELL_KNOWN)) return [v4(p[6]!, p[7]!)];
  // 2002:AABB:CCDD::/48 routes to AA.BB.CC.DD.
  if (addr.match(SIX_TO_FOUR)) return [v4(p[1]!, p[2]!)];
  // 2001:0:SERVER:…:~CLIENT (RFC 4380): the client address is stored inverted.
  if (addr.match(TEREDO)) return [v4(p[2]!, p[3]!), v4(~p[6]! & 0xffff, ~p[7]! & 0xffff)];
  return undefined;
}

/**
 * Host names that always mean this machine, whatever DNS says (RFC 6761 §6.3): `localhost` and
 * every name under `.localhost`, with or without the trailing dot.
 */
export function isLocalhostName(host: string): boolean {
  const h = host.toLowerCase().replace(/\.$/, "");
  return h === "localhost" || h.endsWith(".localhost");
}

/** How the address of a refusal was obtained: the URL names it, DNS answered it, or the socket. */
export type AddressSource = "literal" | "dns" | "socket";

/** Where fetches may go; built once from the operator's configuration. */
export interface AddressPolicy {
  /** True when the operator let fetches reach non-public addresses (--fetch-allow-private). */
  readonly allowPrivate: boolean;
  /** Throws the network-policy refusal for a host name that is loopback by name. */
  checkHostname(host: string): void;
  /** Throws the network-policy refusal unless `address` may be contacted for `host`. */
  checkAddress(host: string, address: string, source: AddressSource): void;
}

/** The policy for a server: only public unicast, or anything when `allowPrivate`. */
export function addressPolicy(allowPrivate: boolean): AddressPolicy {
  return {
    allowPrivate,
    checkHostname(host) {
      if (allowPrivate || !isLocalhostName(host)) return;
      throw refusal(`${shown(host)} resolves to a loopback address (a localhost name)`);
    },
    checkAddress(host, address, source) {
      if (allowPrivate) return;
      const c = classifyAddress(address);
      if (c.isPublic) return;
      const embedded = c.embedded ? `, carrying IPv4 ${c.embedded}` : "";
      const why =
        source === "literal"
          ? `${shown(host)} is ${c.description}${embedded}`
          : `${shown(host)} ${source === "dns" ? "resolves to" : "connected to"} ${c.description} (${address}${embedded})`;
      throw refusal(why);
    },
  };
}

/**
 * The refusal: PermissionDenied (HTTP 403), saying it is the server's network policy (not the
 * caller's capabilities) and how the operator changes it. Names only the host, never the URL,
 * so credentials in a URL never reach a message or a log.
 */
function refusal(why: string): CacheroachError {
  return new CacheroachError(
    "ERR_NETWORK_POLICY",
    `fetch refused by network policy: ${why}; the operator can allow private targets with --fetch-allow-private`,
  );
}

/** A host as the refusal shows it: IPv6 literals bracketed, bounded in length. */
function shown(host: string): string {
  const h = host.length > 253 ? `${host.slice(0, 253)}…` : host;
  return h.includes(":") && !h.startsWith("[") ? `[${h}]` : h;
}
