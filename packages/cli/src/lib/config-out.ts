/**
 * Writing configs for someone else (`principal create`, `session delegate --out`): checked before
 * any server call, and never replacing an existing file unless --force.
 */
import { stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { type CliConfig, saveConfig } from "./config.js";
import { ExitCode, UserError } from "./errors.js";

async function kind(path: string): Promise<"file" | "dir" | "other" | undefined> {
  try {
    const st = await stat(path);
    return st.isDirectory() ? "dir" : st.isFile() ? "file" : "other";
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/**
 * Checks that a config can be written to `path` (its directory exists; the file does not, or
 * `force`) and returns it made absolute. Call before changing anything on the server.
 */
export async function checkConfigTarget(path: string, force: boolean, flag = "--out"): Promise<string> {
  const abs = resolve(path);
  const k = await kind(abs);
  if (k === "dir" || k === "other") {
    throw new UserError(`${flag} ${path} is not a regular file`, ExitCode.usage, [
      `name the file to write, e.g. ${flag} ${resolve(abs, "user.cfg")}`,
    ]);
  }
  if (k === "file" && !force) {
    throw new UserError(`${path} already exists; it was not changed`, ExitCode.conflict, [
      `choose another file with ${flag} <file>`,
      "or pass --force to replace it",
    ]);
  }
  if ((await kind(dirname(abs))) !== "dir") {
    throw new UserError(`the directory of ${path} does not exist`, ExitCode.usage, [
      `create it first: mkdir -p ${dirname(abs)}`,
    ]);
  }
  return abs;
}

/** Writes a config (mode 0600) to a path checked by {@link checkConfigTarget}. */
export async function writeConfigTarget(path: string, cfg: CliConfig, force: boolean): Promise<void> {
  try {
    await saveConfig(path, cfg, { exclusive: !force });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") {
      throw new UserError(`${path} appeared while this command ran; it was not changed`, ExitCode.conflict, [
        "pass --force to replace it",
      ]);
    }
    throw err;
  }
}
