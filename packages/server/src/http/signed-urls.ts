import type { SessionInfo } from "../auth/session.js";
import { CAP } from "../auth/session.js";
import type { TokenSigner } from "../auth/token-signer.js";
import { StoreError } from "../errors.js";
import type { FileRecord } from "../store/file-meta.js";
import { encodePath } from "./url-path.js";

/** Prefix of signed-URL retrieval. */
export const RETRIEVE_PREFIX = "/_/v0/retrieve/";

/**
 * Mints a signed URL for one file: a read-only, ephemeral token pinned to the exact path (and
 * version, when asked), expiring no later than the caller's own session, and tied to that
 * session (`issuedBy`) so revoking it revokes the URL.
 */
export async function signRetrieveUrl(
  signer: TokenSigner,
  caller: SessionInfo,
  file: FileRecord,
  pinVersion: boolean,
  validForMs: number,
): Promise<{ uri: string; expiresAt: Date }> {
  if (caller.id === undefined) {
    // A URL is revocable by revoking the session it was minted under: it needs one.
    throw new StoreError(
      "ERR_PERMISSION_DENIED",
      "signed URLs are minted under a durable session; this token (bootstrap) has none",
    );
  }
  const now = Math.floor(Date.now() / 1000) * 1000;
  const expiresAt = new Date(Math.min(now + validForMs, caller.expiresAt.getTime()));
  if (expiresAt.getTime() <= now)
    throw new StoreError("ERR_BAD_REQUEST", "your session expires before the URL would be valid");
  const token = await signer.sign({
    id: undefined,
    principalId: caller.principalId,
    caps: CAP.read,
    scope: {
      kind: "location",
      tenantId: file.tenantId,
      path: file.path,
      version: pinVersion ? file.version : 0,
    },
    issuedAt: new Date(now),
    expiresAt,
    name: "",
    note: "",
    issuedBy: caller.id,
  });
  const name = file.path.slice(file.path.lastIndexOf("/") + 1);
  return { uri: `${RETRIEVE_PREFIX}${encodePath(name)}?access_token=${token}`, expiresAt };
}

/** Content-Disposition naming a download (RFC 6266, with an RFC 8187 UTF-8 form). */
export function attachment(path: string): string {
  const name = path.slice(path.lastIndexOf("/") + 1);
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, "_");
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}
