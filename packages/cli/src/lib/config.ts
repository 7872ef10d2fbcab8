/**
 * The CLI's config file: which server to talk to and with which token.
 *
 * JSON, default `~/.cacheroach/config`, chosen otherwise by `-c/--config` or `CACHEROACH_CONFIG`:
 * `{ "server": "http://127.0.0.1:13013", "token": "<jwt>", "session": <Session, protobuf JSON>,
 *    "defaultTenant": "<uuid>" }`.
 * Written atomically (temp file + rename) with mode 0600, in a directory created with mode 0700.
 */
import { randomBytes } from "node:crypto";
import { chmod, link, mkdir, open, readFile, rename, rm } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { type Session, SessionSchema } from "@cacheroach/proto";

/** Environment variable naming the config file. */
export const CONFIG_ENV = "CACHEROACH_CONFIG";

/** The config file as stored. */
export interface CliConfig {
  /** Base URL of the server, e.g. `http://127.0.0.1:13013` (no trailing slash). */
  server: string;
  /** The bearer JWT. */
  token: string;
  /** The session the token presents, as protobuf JSON. */
  session?: JsonValue;
  /** Tenant used by file commands when `--tenant` is not given. */
  defaultTenant?: string;
}

/** The config file is missing: the user has not bootstrapped or logged in yet. */
export class ConfigMissingError extends Error {
  constructor(readonly path: string) {
    super(
      `no cacheroach config at ${path}. Run \`cacheroach bootstrap <server-url>\` to create one ` +
        `(or \`cacheroach auth set\` with an existing token), or point -c/--config or ${CONFIG_ENV} at one.`,
    );
    this.name = "ConfigMissingError";
  }
}

/** The config file exists but cannot be used. */
export class ConfigInvalidError extends Error {
  constructor(
    readonly path: string,
    problem: string,
  ) {
    super(`config file ${path} is not usable: ${problem}. Fix it or re-run \`cacheroach bootstrap\`.`);
    this.name = "ConfigInvalidError";
  }
}

/** Default location: `~/.cacheroach/config`. */
export function defaultConfigPath(): string {
  return join(homedir(), ".cacheroach", "config");
}

/** Resolves the config path: the flag, else `CACHEROACH_CONFIG`, else the default. */
export function resolveConfigPath(flag?: string): string {
  const chosen = flag || process.env[CONFIG_ENV] || defaultConfigPath();
  return resolve(chosen);
}

/** Reads and validates the config file. */
export async function loadConfig(path: string): Promise<CliConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") throw new ConfigMissingError(path);
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ConfigInvalidError(path, `not JSON (${(err as Error).message})`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigInvalidError(path, "not a JSON object");
  }
  const obj = parsed as Record<string, unknown>;
  if (typeof obj["server"] !== "string" || obj["server"] === "") {
    throw new ConfigInvalidError(path, `"server" is missing`);
  }
  if (typeof obj["token"] !== "string") throw new ConfigInvalidError(path, `"token" is missing`);
  if (obj["defaultTenant"] !== undefined && typeof obj["defaultTenant"] !== "string") {
    throw new ConfigInvalidError(path, `"defaultTenant" must be a string`);
  }
  const cfg: CliConfig = { server: obj["server"], token: obj["token"] };
  if (obj["session"] !== undefined && obj["session"] !== null) cfg.session = obj["session"] as JsonValue;
  if (typeof obj["defaultTenant"] === "string" && obj["defaultTenant"] !== "") {
    cfg.defaultTenant = obj["defaultTenant"];
  }
  return cfg;
}

/** Options of {@link saveConfig}. */
export interface SaveConfigOptions {
  /**
   * Never replace an existing file: the temp file is hard-linked into place, which fails with
   * an EEXIST error (and changes nothing) when the target exists.
   */
  exclusive?: boolean;
}

/**
 * Writes the config atomically: a temp file (mode 0600) in the same directory, fsynced, then
 * renamed over the target (or, with `exclusive`, linked to it). The directory is created with
 * mode 0700 if missing.
 */
export async function saveConfig(path: string, cfg: CliConfig, opts: SaveConfigOptions = {}): Promise<void> {
  const dir = dirname(path);
  const created = await mkdir(dir, { recursive: true, mode: 0o700 });
  if (created !== undefined) await chmod(dir, 0o700); // mkdir's mode is subject to the umask
  const tmp = join(dir, `.${randomBytes(6).toString("hex")}.config.tmp`);
  const fh = await open(tmp, "wx", 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(cfg, null, 2)}\n`, "utf8");
    await fh.chmod(0o600);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  try {
    if (opts.exclusive) await link(tmp, path);
    else await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  if (opts.exclusive) await rm(tmp, { force: true });
}

/** Decodes the config's session (protobuf JSON), if any. */
export function configSession(cfg: CliConfig): Session | undefined {
  if (cfg.session === undefined) return undefined;
  try {
    return fromJson(SessionSchema, cfg.session, { ignoreUnknownFields: true });
  } catch {
    return undefined;
  }
}

/** Encodes a session as protobuf JSON for the config. */
export function sessionToJson(session: Session): JsonValue {
  return toJson(SessionSchema, session);
}
