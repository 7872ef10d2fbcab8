import { chmod, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { createSecureContext, type SecureContextOptions } from "node:tls";

/** A certificate chain and its private key, in PEM. */
export interface TlsMaterial {
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** A TLS setting is unusable; the message names the file and the problem. */
export class TlsError extends Error {
  override readonly name = "TlsError";
}

/**
 * Reads a PEM certificate chain and key and checks that they belong together (Node refuses a
 * mismatched pair when the context is built), so a bad pair fails at start or is refused at
 * reload, never at the first handshake.
 */
export async function readTlsFiles(certFile: string, keyFile: string): Promise<TlsMaterial> {
  const read = async (file: string, what: string) => {
    try {
      return await readFile(file);
    } catch (err) {
      throw new TlsError(`cannot read the TLS ${what} ${file}: ${(err as Error).message}`);
    }
  };
  const material = { cert: await read(certFile, "certificate"), key: await read(keyFile, "key") };
  try {
    createSecureContext(contextOptions(material));
  } catch (err) {
    throw new TlsError(
      `TLS certificate ${certFile} and key ${keyFile} are not usable: ${(err as Error).message}`,
    );
  }
  return material;
}

/**
 * A self-signed certificate for local development, kept in `dir` (tls-self-signed.crt/.key) and
 * reused while it is valid, so clients can trust it once (e.g. NODE_EXTRA_CA_CERTS, curl --cacert).
 * Valid for localhost, 127.0.0.1, ::1 and the given host names.
 */
export async function selfSignedTls(
  dir: string,
  hosts: readonly string[],
): Promise<TlsMaterial & { certFile: string }> {
  const certFile = join(dir, "tls-self-signed.crt");
  const keyFile = join(dir, "tls-self-signed.key");
  try {
    const existing = await readTlsFiles(certFile, keyFile);
    const { X509Certificate } = await import("node:crypto");
    const x = new X509Certificate(existing.cert);
    if (
      new Date(x.validTo).getTime() > Date.now() + 24 * 3600_000 &&
      hosts.every((h) => x.checkHost(h) || x.checkIP(h))
    )
      return { ...existing, certFile };
  } catch {
    // none yet, unreadable or expiring: make a new one
  }
  const { generate } = await import("selfsigned");
  const names = [...new Set(["localhost", ...hosts.filter((h) => !/^[\d.:]+$/.test(h))])];
  const ips = [...new Set(["127.0.0.1", "::1", ...hosts.filter((h) => /^[\d.:]+$/.test(h))])];
  const notAfter = new Date(Date.now() + 365 * 24 * 3600_000);
  const pems = await generate([{ name: "commonName", value: "cacheroach (self-signed)" }], {
    keyType: "ec",
    algorithm: "sha256",
    notAfterDate: notAfter,
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
      { name: "extKeyUsage", serverAuth: true },
      {
        name: "subjectAltName",
        altNames: [
          ...names.map((value) => ({ type: 2 as const, value })),
          ...ips.map((ip) => ({ type: 7 as const, ip })),
        ],
      },
    ],
  });
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await writeFile(keyFile, pems.private, { mode: 0o600 });
  await chmod(keyFile, 0o600);
  await writeFile(certFile, pems.cert, { mode: 0o644 });
  return { cert: Buffer.from(pems.cert), key: Buffer.from(pems.private), certFile };
}

/** The context options of a certificate and key: HTTP/2 first by ALPN, TLS 1.2 at least. */
export function contextOptions(m: TlsMaterial): SecureContextOptions {
  return { cert: m.cert, key: m.key, minVersion: "TLSv1.2" };
}
