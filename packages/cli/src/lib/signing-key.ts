/** Reading signing keys given on the command line as base64 or `@file`. */
import { readFile } from "node:fs/promises";
import { ExitCode, UserError } from "./errors.js";

/** Environment variable holding signing keys (comma-separated). */
export const SIGNING_KEY_ENV = "CACHEROACH_SIGNING_KEY";

/**
 * Resolves one `--signing-key` value to the key's text: `@path` reads the file (trimmed),
 * anything else is the key itself. Decoding is left to the server's `parseSigningKey`.
 */
export async function signingKeyText(arg: string): Promise<string> {
  const v = arg.trim();
  if (!v.startsWith("@")) return v;
  const file = v.slice(1);
  try {
    return (await readFile(file, "utf8")).trim();
  } catch (err) {
    throw new UserError(`cannot read signing key file "${file}": ${(err as Error).message}`, ExitCode.usage);
  }
}

/** Signing-key arguments from the flag, else from the environment (comma-separated). */
export function signingKeyArgs(flag: string[] | undefined): string[] {
  if (flag && flag.length > 0) return flag;
  const env = process.env[SIGNING_KEY_ENV];
  return env
    ? env
        .split(",")
        .map((s) => s.trim())
        .filter((s) => s !== "")
    : [];
}

/** Decodes signing-key arguments with the server's parser, with a clear error on bad input. */
export async function parseSigningKeyArgs(
  args: string[],
  parse: (text: string) => Uint8Array,
): Promise<Uint8Array[]> {
  const keys: Uint8Array[] = [];
  for (const arg of args) {
    const text = await signingKeyText(arg);
    try {
      keys.push(parse(text));
    } catch (err) {
      throw new UserError(
        `invalid signing key${arg.trim().startsWith("@") ? ` in ${arg.trim().slice(1)}` : ""}: ${(err as Error).message}`,
        ExitCode.usage,
        ["a signing key is base64 (e.g. `openssl rand -base64 32`), given inline or as @file"],
      );
    }
  }
  return keys;
}
