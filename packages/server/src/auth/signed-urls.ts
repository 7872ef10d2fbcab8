import { CacheroachError } from "../errors.js";
import type { FileRecord } from "../store/file-meta.js";
import { CAP, type SessionInfo } from "./session.js";
import type { TokenSigner } from "./token-signer.js";

/** Path prefix of signed-URL retrieval (served by http/special-routes.ts). */
export const RETRIEVE_PREFIX = "/_/v0/retrieve/";

/** What {@link signRetrieveUrl} signs. */
export interface SignRequest {
  readonly signer: TokenSigner;
  /** The session asking; the URL never outlives it and is revoked with it. */
  readonly caller: SessionInfo;
  readonly file: FileRecord;
  /** Serve exactly `file.version` (else whatever version is current when the URL is used). */
  readonly pinVersion: boolean;
  readonly validForMs: number;
}

/**
 * Mints a signed URL for one file: a read-only, ephemeral token pinned to the exact path (and
 * version, when asked), expiring no later than the caller's own session, and tied to that
 * session (`issuedBy`) so revoking it revokes the URL.
 */
export async function signRetrieveUrl(r: SignRequest): Promise<{ uri: string; expiresAt: Date }> {
  const { caller, file } = r;
  if (caller.id === undefined) {
    // A URL is revocable by revoking the session it was minted under: it needs one.
    throw new CacheroachError(
      "ERR_PERMISSION_DENIED",
      "signed URLs are minted under a durable session; this token (bootstrap) has none",
    );
  }
  const now = Math.floor(Date.now() / 1000) * 1000;
  const expiresAt = new Date(Math.min(now + r.validForMs, caller.expiresAt.getTime()));
  if (expiresAt.getTime() <= now)
    throw new CacheroachError("ERR_BAD_REQUEST", "your session expires before the URL would be valid");
  const token = await r.signer.sign({
    id: undefined,
    principalId: caller.principalId,
    caps: CAP.read,
    scope: {
      kind: "location",
      tenantId: file.tenantId,
      path: file.path,
      version: r.pinVersion ? file.version : 0,
    },
    issuedAt: new Date(now),
    expiresAt,
    name: "",
    note: "",
    issuedBy: caller.id,
  });
  // The last segment is cosmetic (the token names the file): it never contains "/".
  const name = file.path.slice(file.path.lastIndexOf("/") + 1);
  return { uri: `${RETRIEVE_PREFIX}${encodeURIComponent(name)}?access_token=${token}`, expiresAt };
}
