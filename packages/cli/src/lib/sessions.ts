/** Sessions as the CLI shows them: capabilities, scopes and expiries in text and JSON. */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type Capabilities, type Scope, type Session, SessionStatus } from "@cacheroach/proto";
import { ExitCode, UserError } from "./errors.js";
import { formatTime } from "./format.js";
import { isUuid, remotePathProblem } from "./paths.js";

/** The five capabilities, in proto order. */
export const CAPABILITY_NAMES = ["read", "write", "delegate", "pii", "fetch"] as const;
export type CapabilityName = (typeof CAPABILITY_NAMES)[number];

/** Capability flags as a plain object (assignable to the Capabilities message init). */
export type CapabilitySet = Record<CapabilityName, boolean>;

/** All capabilities set. */
export function allCapabilities(): CapabilitySet {
  return { read: true, write: true, delegate: true, pii: true, fetch: true };
}

/** Parses "read,write" or "all"; unknown or empty lists are usage errors. */
export function parseCapabilities(text: string, flag = "--capabilities"): CapabilitySet {
  const out: CapabilitySet = { read: false, write: false, delegate: false, pii: false, fetch: false };
  const parts = text
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== "");
  const hint = `choose from ${CAPABILITY_NAMES.join(", ")} (comma-separated), or all`;
  if (parts.length === 0) throw new UserError(`${flag} names no capability`, ExitCode.usage, [hint]);
  for (const p of parts) {
    if (p === "all") Object.assign(out, allCapabilities());
    else if ((CAPABILITY_NAMES as readonly string[]).includes(p)) out[p as CapabilityName] = true;
    else throw new UserError(`${flag}: unknown capability "${p}"`, ExitCode.usage, [hint]);
  }
  return out;
}

/** The names of the capabilities set, in proto order. */
export function capabilityNames(c: Capabilities | undefined): CapabilityName[] {
  return c ? CAPABILITY_NAMES.filter((n) => c[n]) : [];
}

/** "read,write", or "none". */
export function capabilityText(c: Capabilities | undefined): string {
  const names = capabilityNames(c);
  return names.length > 0 ? names.join(",") : "none";
}

/** A scope as JSON. */
export type ScopeJson =
  | { kind: "super" }
  | { kind: "principal"; principalId: string }
  | { kind: "tenant"; tenantId: string; path: string; version?: number }
  | { kind: "none" };

/** Converts a Scope message to {@link ScopeJson}. */
export function scopeJson(s: Scope | undefined): ScopeJson {
  switch (s?.kind.case) {
    case "superToken":
      return s.kind.value ? { kind: "super" } : { kind: "none" };
    case "onPrincipal":
      return { kind: "principal", principalId: s.kind.value };
    case "onLocation": {
      const l = s.kind.value;
      const out: ScopeJson = { kind: "tenant", tenantId: l.tenantId, path: l.path };
      if (l.version > 0n) out.version = Number(l.version);
      return out;
    }
    default:
      return { kind: "none" };
  }
}

/** "super", "principal <id>", "tenant <id> /path" (+ "@v3" when pinned). */
export function scopeText(s: Scope | undefined): string {
  const j = scopeJson(s);
  switch (j.kind) {
    case "super":
      return "super";
    case "principal":
      return `principal ${j.principalId}`;
    case "tenant":
      return `tenant ${j.tenantId} ${j.path}${j.version ? ` @v${j.version}` : ""}`;
    default:
      return "none";
  }
}

/** The tenant of a location-scoped session, if it is one. */
export function scopeTenant(s: Scope | undefined): string | undefined {
  return s?.kind.case === "onLocation" ? s.kind.value.tenantId || undefined : undefined;
}

/** A session's expiry as a Date, if set. */
export function sessionExpiry(s: Session): Date | undefined {
  return s.expiresAt ? timestampDate(s.expiresAt) : undefined;
}

/** A session as JSON for --json output. */
export interface SessionJson {
  /** Empty for ephemeral tokens (the bootstrap token, signed URLs). */
  id: string;
  principalId: string;
  name: string;
  note: string;
  capabilities: CapabilityName[];
  scope: ScopeJson;
  expiresAt: string;
  issuedAt: string;
  issuedBy: string;
  /** The grant whose authority the issuer used, when not the issuer itself. */
  authorityId: string;
  /** "active", "revoked", "expired", "orphaned" (only in listings), else "". */
  status: string;
}

const STATUS_TEXT: Record<SessionStatus, string> = {
  [SessionStatus.UNSPECIFIED]: "",
  [SessionStatus.ACTIVE]: "active",
  [SessionStatus.REVOKED]: "revoked",
  [SessionStatus.EXPIRED]: "expired",
  [SessionStatus.ORPHANED]: "orphaned",
};

/** A session's status in words ("" when not reported). */
export function statusText(s: Session): string {
  return STATUS_TEXT[s.status] ?? "";
}

/** Converts a Session message to {@link SessionJson}. */
export function sessionJson(s: Session): SessionJson {
  return {
    id: s.id,
    principalId: s.principalId,
    name: s.name,
    note: s.note,
    capabilities: capabilityNames(s.capabilities),
    scope: scopeJson(s.scope),
    expiresAt: formatTime(sessionExpiry(s)),
    issuedAt: formatTime(s.issuedAt ? timestampDate(s.issuedAt) : undefined),
    issuedBy: s.issuedBy,
    authorityId: s.authorityId,
    status: statusText(s),
  };
}

/** "2026-01-01T00:00:00Z (in 3d 4h)" / "(expired)". */
export function expiryText(d: Date | undefined, now = Date.now()): string {
  if (!d) return "never";
  const ms = d.getTime() - now;
  return `${formatTime(d)} (${ms <= 0 ? "expired" : `in ${roughDuration(ms)}`})`;
}

/** "3d 4h", "5h 2m", "42s". */
export function roughDuration(ms: number): string {
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return h > 0 ? `${d}d ${h}h` : `${d}d`;
  if (h > 0) return m > 0 ? `${h}h ${m}m` : `${h}h`;
  if (m > 0) return `${m}m`;
  return `${s}s`;
}

/** Checks a UUID given on the command line (lower-cased); `what` names it in the error. */
export function checkUuid(text: string, what: string, suggestions: string[] = []): string {
  const id = text.trim().toLowerCase();
  if (!isUuid(id)) {
    throw new UserError(
      `${what} "${text}" is not an ID (a UUID like 0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a)`,
      ExitCode.usage,
      suggestions,
    );
  }
  return id;
}

/** Checks a grant path: "/*", "/dir/*" or an exact file path. */
export function checkPathPattern(p: string): string {
  if (p === "/*") return p;
  const base = p.endsWith("/*") ? p.slice(0, -2) : p;
  const problem = base.includes("*") ? 'may contain "*" only as a final "/*"' : remotePathProblem(base);
  if (problem) {
    throw new UserError(`--path "${p}" ${problem}`, ExitCode.usage, [
      'use "/*" (the whole tenant), "/dir/*" (everything below /dir/) or an exact file path "/dir/file.txt"',
    ]);
  }
  return p;
}
