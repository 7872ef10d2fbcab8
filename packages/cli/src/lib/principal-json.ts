/** Principals as JSON for --json output. */
import type { Principal } from "@cacheroach/proto";

/** A principal as plain JSON (claims only when the session may see PII). */
export interface PrincipalJson {
  id: string;
  label: string;
  version: number;
  emailDomain: string;
  email: string;
  claims: Record<string, unknown> | null;
}

/** Converts a Principal message to {@link PrincipalJson}. */
export function principalJson(p: Principal): PrincipalJson {
  let claims: Record<string, unknown> | null = null;
  if (p.claimsJson) {
    try {
      claims = JSON.parse(p.claimsJson) as Record<string, unknown>;
    } catch {
      claims = null;
    }
  }
  return {
    id: p.id,
    label: p.label,
    version: Number(p.version),
    emailDomain: p.emailDomain,
    email: p.email,
    claims,
  };
}
