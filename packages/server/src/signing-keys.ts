import { randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { TokenSigner } from "./auth/token-signer.js";
import { errnoOf } from "./util/errno.js";

/** File in the data directory holding the signing keys, one base64 key per line (first signs). */
export const SIGNING_KEYS_FILE = "signing-keys";

/** Parses one base64 signing key; keys must be at least 32 bytes. */
export function parseSigningKey(text: string): Uint8Array {
  const t = text.trim();
  if (!/^[A-Za-z0-9+/_-]+=*$/.test(t)) throw new Error("signing key is not base64");
  const key = Buffer.from(t, "base64");
  if (key.length < 32) throw new Error(`signing key is ${key.length} bytes; at least 32 are required`);
  return new Uint8Array(key);
}

/** Reads the signing keys kept in a data directory. */
export async function readSigningKeys(dataDir: string): Promise<Uint8Array[]> {
  const file = join(dataDir, SIGNING_KEYS_FILE);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new Error(`no signing keys at ${file}: start the server once with this data directory first`, {
      cause: err,
    });
  }
  const keys = text
    .split("\n")
    .filter((l) => l.trim() !== "" && !l.startsWith("#"))
    .map(parseSigningKey);
  if (keys.length === 0) throw new Error(`${file} holds no signing key`);
  return keys;
}

/** Reads the data directory's signing keys, generating a random 32-byte key (mode 0600) if none exist. */
export async function ensureSigningKeys(dataDir: string): Promise<Uint8Array[]> {
  try {
    return await readSigningKeys(dataDir);
  } catch {
    await mkdir(dataDir, { recursive: true, mode: 0o700 });
    const file = join(dataDir, SIGNING_KEYS_FILE);
    await writeFile(
      file,
      `# cacheroach signing keys: first signs, all verify\n${randomBytes(32).toString("base64")}\n`,
      {
        mode: 0o600,
        flag: "wx",
      },
    ).catch((err: unknown) => {
      if (errnoOf(err) !== "EEXIST") throw err;
    });
    await chmod(file, 0o600);
    return readSigningKeys(dataDir);
  }
}

/** The nil principal ID carried by ephemeral bootstrap tokens. */
export const BOOTSTRAP_PRINCIPAL = "00000000-0000-0000-0000-000000000000";

/**
 * Mints an ephemeral (unrevocable, short-lived) super token from a signing key, as
 * `cacheroach bootstrap` does to create the first durable super session.
 */
export async function mintBootstrapToken(key: Uint8Array, validForSeconds = 60): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new TokenSigner([key]).sign({
    id: undefined,
    principalId: BOOTSTRAP_PRINCIPAL,
    caps: 31,
    scope: { kind: "super" },
    issuedAt: new Date(now * 1000),
    expiresAt: new Date((now + validForSeconds) * 1000),
    name: "",
    note: "bootstrap",
    issuedBy: undefined,
  });
}
