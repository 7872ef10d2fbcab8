import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  hkdfSync,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";

/** Text prefix of a sealed value (the format's version). */
const PREFIX = "v1.";
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Seals small secrets with keys derived from the signing keys (HKDF-SHA256, one `purpose` per
 * use): the first key seals, every key opens, so a rotation that keeps the old key as a verifier
 * keeps the sealed values readable. Two kinds:
 *
 * * {@link seal}/{@link open}: AES-256-GCM (confidential and tamper-evident), for OIDC refresh
 *   tokens at rest, which are never stored in the clear;
 * * {@link sign}/{@link verify}: HMAC-SHA256 (tamper-evident only), for the OIDC login cookie.
 */
export class SecretBox {
  private readonly keys: Buffer[];

  constructor(signingKeys: readonly Uint8Array[], purpose: string) {
    if (signingKeys.length === 0) throw new Error("at least one signing key is required");
    this.keys = signingKeys.map((k) =>
      Buffer.from(hkdfSync("sha256", k, Buffer.alloc(0), `cacheroach ${purpose}`, 32)),
    );
  }

  /** `plain` encrypted under the first key: "v1.<base64url(iv | ciphertext | tag)>". */
  seal(plain: string): string {
    const iv = randomBytes(IV_BYTES);
    const c = createCipheriv("aes-256-gcm", this.keys[0]!, iv);
    const body = Buffer.concat([c.update(plain, "utf8"), c.final()]);
    return PREFIX + Buffer.concat([iv, body, c.getAuthTag()]).toString("base64url");
  }

  /** The plain text of a sealed value, or undefined when no key opens it (or it is malformed). */
  open(sealed: string): string | undefined {
    if (!sealed.startsWith(PREFIX)) return undefined;
    const raw = Buffer.from(sealed.slice(PREFIX.length), "base64url");
    if (raw.length < IV_BYTES + TAG_BYTES) return undefined;
    const iv = raw.subarray(0, IV_BYTES);
    const tag = raw.subarray(raw.length - TAG_BYTES);
    const body = raw.subarray(IV_BYTES, raw.length - TAG_BYTES);
    for (const key of this.keys) {
      try {
        const d = createDecipheriv("aes-256-gcm", key, iv);
        d.setAuthTag(tag);
        return Buffer.concat([d.update(body), d.final()]).toString("utf8");
      } catch {
        // another key, or tampered
      }
    }
    return undefined;
  }

  /** `text` with its MAC under the first key: "<base64url(text)>.<base64url(mac)>". */
  sign(text: string): string {
    const body = Buffer.from(text, "utf8").toString("base64url");
    return `${body}.${this.mac(this.keys[0]!, body).toString("base64url")}`;
  }

  /** The text of a signed value whose MAC one of the keys verifies, else undefined. */
  verify(signed: string): string | undefined {
    const dot = signed.indexOf(".");
    if (dot <= 0) return undefined;
    const body = signed.slice(0, dot);
    const given = Buffer.from(signed.slice(dot + 1), "base64url");
    for (const key of this.keys) {
      const want = this.mac(key, body);
      if (given.length === want.length && timingSafeEqual(given, want))
        return Buffer.from(body, "base64url").toString("utf8");
    }
    return undefined;
  }

  private mac(key: Buffer, body: string): Buffer {
    return createHmac("sha256", key).update(body).digest();
  }
}
