import { resolve } from "node:path";
import { Flags } from "@oclif/core";
import { BaseCommand } from "../lib/base-command.js";
import { EXIT_CODES_HELP, ExitCode, UserError } from "../lib/errors.js";
import { parseSigningKeyArgs, SIGNING_KEY_ENV, signingKeyArgs } from "../lib/signing-key.js";

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
    `Serves the whole API (Connect, gRPC and gRPC-Web) and plain HTTP on one port, and runs until interrupted (Ctrl-C / SIGTERM stop it cleanly, finishing requests in flight).

With no --connect it runs an embedded PostgreSQL kept in the data directory: nothing to install. --connect points it at an external PostgreSQL (15 or later) or CockroachDB (23 or later) instead.

Tokens and upload states are signed with HMAC keys. With no --signing-key a key is generated on first start and kept in the data directory; give --signing-key (repeatable: the first signs, all verify) to manage keys yourself, e.g. to run several instances or rotate keys.

Every flag can also be set by environment variable (shown below; ${SIGNING_KEY_ENV} takes a comma-separated list). Flags win over the environment.

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

  static override flags = {
    bind: Flags.string({
      env: "CACHEROACH_BIND",
      summary: "Address to listen on (host:port).",
      default: "127.0.0.1:13013",
      helpValue: "<host:port>",
    }),
    connect: Flags.string({
      env: "CACHEROACH_CONNECT",
      summary: "PostgreSQL or CockroachDB URL. Without it, an embedded PostgreSQL runs in the data dir.",
      helpValue: "<postgres://…>",
    }),
    "data-dir": Flags.string({
      env: "CACHEROACH_DATA_DIR",
      summary: "Directory for the embedded database and the generated signing key.",
      default: ".cacheroach-data",
      helpValue: "<dir>",
    }),
    "signing-key": Flags.string({
      summary: "HMAC signing key, base64 or @file (repeatable; the first one signs).",
      multiple: true,
      helpValue: "<base64|@file>",
    }),
    "chunk-size": Flags.integer({
      env: "CACHEROACH_CHUNK_SIZE",
      summary: "Chunk size in bytes for new content, 65536..4194304 (default 524288 = 512 KiB).",
      min: 65536,
      max: 4194304,
    }),
    "max-connections": Flags.integer({
      env: "CACHEROACH_MAX_CONNECTIONS",
      summary: "Database connections this server may hold in all (default 20).",
      description:
        "One serves the readiness probe (/readyz); with PostgreSQL a third of the rest (2..8) serve bulk chunk writes and the others everything else. The server never holds more.",
      min: 2,
      max: 10000,
    }),
    "fetch-allow-private": Flags.boolean({
      env: "CACHEROACH_FETCH_ALLOW_PRIVATE",
      summary:
        "Let server-side fetches (file fetch) reach loopback, private, link-local and other non-public addresses.",
      description:
        "Off by default: a fetch may reach only public unicast addresses, so a caller with the fetch capability cannot reach this server's own network (the cloud metadata service, databases, admin ports). Turn it on only when every holder of the fetch capability may reach that network.",
      default: false,
      allowNo: true,
    }),
    "public-url": Flags.string({
      env: "CACHEROACH_PUBLIC_URL",
      summary: "URL clients reach this server at, e.g. https://files.example.com behind a TLS proxy.",
      description:
        "Absolute http(s) URL without path, query or credentials. Names the server in configs downloaded from /_/v0/config, counts as this server's own origin for same-origin checks, and (https) marks cookies Secure. Without it the request's Host is used only when it is the bind address or a configured vhost; X-Forwarded-* headers are never trusted.",
      helpValue: "<url>",
    }),
    "active-content-hosts": Flags.string({
      env: "CACHEROACH_ACTIVE_CONTENT_HOSTS",
      summary:
        "Hosts (comma-separated) whose HTML, SVG, XML and scripts are shown inline instead of downloaded.",
      description:
        "On these hosts such files are served inline in a sandbox whose scripts run in an opaque origin (they cannot use this server's cookies or API). Elsewhere they are downloads (Content-Disposition: attachment).",
      helpValue: "<host,…>",
    }),
    "log-level": Flags.string({
      env: "CACHEROACH_LOG_LEVEL",
      summary: "Log level.",
      options: ["silent", "fatal", "error", "warn", "info", "debug", "trace"],
      default: "info",
    }),
  };

  public async run(): Promise<StartInfo | undefined> {
    const server = await import("@cacheroach/server");
    const dataDir = resolve(this.flags["data-dir"]);
    const keyArgs = signingKeyArgs(this.flags["signing-key"]);
    const signingKeys =
      keyArgs.length > 0 ? await parseSigningKeyArgs(keyArgs, server.parseSigningKey) : undefined;
    const opts: Parameters<typeof server.startServer>[0] = {
      bind: this.flags.bind,
      dataDir,
      logLevel: this.flags["log-level"],
    };
    if (this.flags.connect) opts.databaseUrl = this.flags.connect;
    if (signingKeys) opts.signingKeys = signingKeys;
    if (this.flags["chunk-size"] !== undefined) opts.chunkSize = this.flags["chunk-size"];
    if (this.flags["max-connections"] !== undefined) opts.maxConnections = this.flags["max-connections"];
    if (this.flags["fetch-allow-private"]) opts.fetchAllowPrivate = true;
    if (this.flags["public-url"] !== undefined) opts.publicUrl = this.flags["public-url"];
    if (this.flags["active-content-hosts"] !== undefined)
      opts.activeContentHosts = this.flags["active-content-hosts"].split(",").filter((h) => h.trim() !== "");

    const stopped = waitForSignal(); // listen before starting, so an early Ctrl-C still closes cleanly
    let running: Awaited<ReturnType<typeof server.startServer>>;
    try {
      running = await server.startServer(opts);
    } catch (err) {
      if (err instanceof server.ConfigError) throw new UserError(err.message, ExitCode.usage);
      throw err;
    }
    const keyHint = signingKeys
      ? `--signing-key ${keyArgs[0]?.startsWith("@") ? keyArgs[0] : "<key>"}`
      : `--data-dir ${dataDir}`;
    const bootstrap = `cacheroach bootstrap ${keyHint} ${running.url}`;
    const info: StartInfo = {
      url: running.url,
      port: running.port,
      dataDir,
      database: this.flags.connect ? "external" : "embedded",
      bootstrap,
    };
    if (this.jsonEnabled()) {
      this.logJson(info);
    } else {
      this.log(`cacheroach is listening on ${running.url}`);
      this.log(
        `  database: ${this.flags.connect ? "external (--connect)" : `embedded PostgreSQL in ${dataDir}`}`,
      );
      this.log("");
      this.log("First time? Create an admin login and CLI config (once) with:");
      this.log(`  ${bootstrap}`);
      this.log("");
      this.log("Press Ctrl-C to stop.");
    }
    const sig = await stopped;
    // Straight to stderr, also with --json (stdout carries only the JSON document).
    process.stderr.write(`${sig}: shutting down…\n`);
    await running.close();
    process.stderr.write("stopped.\n");
    return undefined;
  }
}
