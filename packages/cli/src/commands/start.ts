import { resolve } from "node:path";
import {
  describeSettings,
  formatDuration,
  formatSize,
  printableSettings,
  type ResolvedSettings,
  readConfigFile,
  resolveSettings,
  SETTINGS,
  SettingsError,
  settingsToOptions,
} from "@cacheroach/server/settings";
import { Flags, type Interfaces } from "@oclif/core";
import { BaseCommand } from "../lib/base-command.js";
import { EXIT_CODES_HELP, ExitCode, UserError } from "../lib/errors.js";
import { selfCommand, shellWord } from "../lib/invocation.js";
import { parseSigningKeyArgs } from "../lib/signing-key.js";

/** Environment variable naming the server's config file (not CACHEROACH_CONFIG: that is the CLI's). */
const SERVER_CONFIG_ENV = "CACHEROACH_SERVER_CONFIG";

/** How long after the grace period the process may still take to stop before it exits anyway. */
const STOP_SLACK_MS = 15_000;

/** What `start --json` prints once the server listens. */
export interface StartInfo {
  url: string;
  port: number;
  dataDir: string;
  database: "embedded" | "external";
  bootstrap: string;
}

/**
 * Resolves on the first SIGINT or SIGTERM, returning its name. A second signal while shutting
 * down exits at once.
 */
function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolveSignal) => {
    const on = (sig: NodeJS.Signals) => {
      process.off("SIGINT", on);
      process.off("SIGTERM", on);
      process.once("SIGINT", () => process.exit(130));
      process.once("SIGTERM", () => process.exit(143));
      resolveSignal(sig);
    };
    process.on("SIGINT", on);
    process.on("SIGTERM", on);
  });
}

export default class Start extends BaseCommand<typeof Start> {
  static override summary = "Run a cacheroach server.";

  static override description =
    `Serves the whole API (Connect, gRPC and gRPC-Web) and plain HTTP on one port, and runs until interrupted.

Ctrl-C or SIGTERM drains: from then on every new request is answered 503 (/readyz too, so a load balancer stops sending; /healthz and /metrics still answer), idle connections are closed and HTTP/2 connections told GOAWAY, while requests in flight (downloads, uploads, RPC streams) run on for up to --grace-period. Then the ones left are cut, the port released, the database stopped, and the process exits 0 (1 if stopping takes more than 15 s beyond the grace period). A second Ctrl-C or SIGTERM exits at once (status 130 or 143).

With no --connect it runs an embedded PostgreSQL kept in the data directory: nothing to install. --connect points it at an external PostgreSQL (15 or later) or CockroachDB (23 or later) instead.

One server per data directory: with the embedded database, the server holds the directory (the file cacheroach.lock names its PID), and a second start on it is refused at once (exit 5) and changes nothing. A lock left by a killed server (its PID gone, or now another process) is taken over.

Tokens and upload states are signed with HMAC keys. With no --signing-key a key is generated on first start and kept in the data directory; give --signing-key (repeatable: the first signs, all verify) to manage keys yourself, e.g. to run several instances or rotate keys.

Every setting can be given as a flag, an environment variable (named under each flag; lists are comma-separated) or a key of a YAML config file (--config; the keys are the flag names). A flag wins over the environment, the environment over the file, the file over the default. Sizes take units (512KiB, 64GiB), durations too (500ms, 30s, 24h, 7d). --print-config shows what is in effect.

After the first start, run the printed \`cacheroach bootstrap\` command once to create an admin principal and a CLI config.

${EXIT_CODES_HELP}`;

  static override examples = [
    {
      description: "Zero-config: embedded PostgreSQL and a generated key in ./.cacheroach-data",
      command: "<%= config.bin %> <%= command.id %>",
    },
    {
      description: "Against CockroachDB, with a key from a file, on all interfaces",
      command:
        "<%= config.bin %> <%= command.id %> --bind 0.0.0.0:13013 --connect postgresql://root@db:26257/cacheroach --signing-key @/run/secrets/hmac",
    },
  ];

  static override baseFlags = {
    // -c names this server's config file here; the CLI's client config means nothing to `start`.
    config: Flags.string({
      char: "c",
      env: SERVER_CONFIG_ENV,
      summary: "Server config file (YAML): setting keys as in the flags, e.g. `max-connections: 40`.",
      description:
        "Precedence: flag > environment variable > config file > default. Unknown keys and bad values are refused at start, naming the key. `--print-config` shows the effective settings in this format.",
      helpValue: "<file.yaml>",
    }),
    verbose: BaseCommand.baseFlags.verbose,
  };

  static override flags = {
    "print-config": Flags.boolean({
      summary: "Print the effective settings (secrets redacted) with where each came from, and exit.",
    }),
    ...settingFlags(),
  };

  public async run(): Promise<StartInfo | undefined> {
    const resolved = await this.settings();
    if (this.flags["print-config"]) {
      if (this.jsonEnabled()) return describeSettings(resolved) as unknown as StartInfo;
      process.stdout.write(await printableSettings(resolved));
      return undefined;
    }
    const server = await import("@cacheroach/server");
    const opts = settingsToOptions(resolved) as NonNullable<Parameters<typeof server.startServer>[0]>;
    const dataDir = resolve(resolved.values.get("data-dir") as string);
    opts.dataDir = dataDir;
    const keyArgs = (resolved.values.get("signing-key") as string[] | undefined) ?? [];
    const signingKeys =
      keyArgs.length > 0 ? await parseSigningKeyArgs(keyArgs, server.parseSigningKey) : undefined;
    if (signingKeys) opts.signingKeys = signingKeys;
    const external = resolved.values.has("connect");

    const stopped = waitForSignal(); // listen before starting, so an early Ctrl-C still closes cleanly
    let running: Awaited<ReturnType<typeof server.startServer>>;
    // SIGHUP: read the TLS certificate and key again (a renewed certificate, e.g. by certbot).
    // Installed before starting: a SIGHUP's default action would end the process.
    let started: typeof running | undefined;
    process.on("SIGHUP", () => {
      if (!started) {
        process.stderr.write("SIGHUP: still starting; ignored\n");
        return;
      }
      started.reloadTls().then(
        (done) =>
          process.stderr.write(
            done ? "SIGHUP: TLS certificate reloaded\n" : "SIGHUP: nothing to reload (no --tls-cert)\n",
          ),
        (err: unknown) =>
          process.stderr.write(
            `SIGHUP: TLS certificate not reloaded, the one in use stays: ${(err as Error).message}\n`,
          ),
      );
    });
    try {
      running = await server.startServer(opts);
    } catch (err) {
      if (err instanceof server.ConfigError) throw new UserError(err.message, ExitCode.usage);
      if (err instanceof server.DataDirInUseError) throw new UserError(err.message, ExitCode.conflict);
      if (err instanceof server.TlsError) throw new UserError(err.message, ExitCode.usage);
      if (err instanceof server.OidcDiscoveryError) throw new UserError(err.message, ExitCode.unavailable);
      throw err;
    }
    started = running;
    const keyHint = signingKeys
      ? `--signing-key ${keyArgs[0]?.startsWith("@") ? shellWord(keyArgs[0]) : "<key>"}`
      : `--data-dir ${shellWord(dataDir)}`;
    const bootstrap = `${selfCommand()} bootstrap ${keyHint} ${running.url}`;
    const info: StartInfo = {
      url: running.url,
      port: running.port,
      dataDir,
      database: external ? "external" : "embedded",
      bootstrap,
    };
    if (this.jsonEnabled()) {
      this.logJson(info);
    } else {
      this.log(`cacheroach is listening on ${running.url}`);
      this.log(`  database: ${external ? "external (--connect)" : `embedded PostgreSQL in ${dataDir}`}`);
      this.log("");
      this.log("First time? Create an admin login and CLI config (once) with:");
      this.log(`  ${bootstrap}`);
      this.log("");
      this.log("Press Ctrl-C to stop.");
    }
    const sig = await stopped;
    const gracePeriodMs = running.config.gracePeriodMs;
    // Straight to stderr, also with --json (stdout carries only the JSON document).
    process.stderr.write(
      `${sig}: draining: finishing requests in flight for up to ${formatDuration(gracePeriodMs)} (signal again to stop at once)…\n`,
    );
    // A database that does not let go must not keep the process alive past its promise.
    setTimeout(() => {
      process.stderr.write("did not stop in time; exiting anyway\n");
      process.exit(1);
    }, gracePeriodMs + STOP_SLACK_MS).unref();
    await running.close();
    process.stderr.write("stopped.\n");
    return undefined;
  }

  /** Flags, environment and config file merged and validated; bad values are usage errors. */
  private async settings(): Promise<ResolvedSettings> {
    const flags = this.flags as Record<string, unknown>;
    try {
      const path = this.flags.config;
      const file = path ? { path, values: await readConfigFile(path) } : undefined;
      return resolveSettings({ flags, env: process.env, ...(file ? { file } : {}) });
    } catch (err) {
      if (err instanceof SettingsError) throw new UserError(err.message, ExitCode.usage);
      throw err;
    }
  }
}

/** One flag per server setting, from the server's settings table. */
function settingFlags() {
  const flags: Interfaces.FlagInput = {};
  for (const s of SETTINGS) {
    const shown =
      s.default === undefined || (Array.isArray(s.default) && s.default.length === 0)
        ? ""
        : ` Default: ${describeDefault(s)}.`;
    const description = `${s.description ? `${s.description}\n\n` : ""}Environment: ${s.env}.${shown}`;
    flags[s.key] =
      s.kind === "boolean"
        ? Flags.boolean({ summary: s.summary, description, allowNo: true })
        : s.key === "signing-key"
          ? Flags.string({ summary: s.summary, description, multiple: true, helpValue: s.helpValue ?? "" })
          : Flags.string({
              summary: s.summary,
              description,
              ...(s.helpValue ? { helpValue: s.helpValue } : {}),
              ...(s.options ? { options: [...s.options] } : {}),
            });
  }
  // Values are typed by the settings table when resolved, so the flags stay loosely typed here.
  return flags as Record<string, Interfaces.OptionFlag<string | undefined>>;
}

function describeDefault(s: (typeof SETTINGS)[number]): string {
  if (s.kind === "size") return formatSize(s.default as number);
  if (s.kind === "duration") return formatDuration(s.default as number);
  return String(s.default);
}
