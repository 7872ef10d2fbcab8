/**
 * The base of every cacheroach command: global flags (--config, --verbose, --json), the config
 * file, authenticated Connect clients, tenant resolution and error reporting.
 */
import type { DescService } from "@bufbuild/protobuf";
import { type Timestamp, timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { type Principal, Principals, type Session, Tenants, Tokens } from "@cacheroach/proto";
import type { Client, Interceptor } from "@connectrpc/connect";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { Command, Errors, Flags, type Interfaces } from "@oclif/core";
import { splitPositionals } from "./argv-split.js";
import { ChunkBodies, chunkBodiesFromEnv } from "./chunk-bodies.js";
import { type CliConfig, CONFIG_ENV, configSession, loadConfig, resolveConfigPath } from "./config.js";
import { codeName, describeError, ExitCode, type FailureContext, toCliError, UserError } from "./errors.js";
import { HttpClient } from "./http.js";
import { type ItemFailure, ItemResults } from "./item-results.js";
import { asId, type Named, pickByName } from "./names.js";
import { retryBudgetFromEnv } from "./retry.js";
import { retryUnavailable } from "./retry-interceptor.js";
import { BAD_SERVER_URL, badServerUrlError, diagnoseWrongServer, serverUrlProblem } from "./server-probe.js";
import { type ClientTransport, makeTransport, transportKindFromEnv } from "./transport.js";

export type CmdFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof BaseCommand)["baseFlags"] & T["flags"]
>;
export type CmdArgs<T extends typeof Command> = Interfaces.InferredArgs<T["args"]>;

/** The `-t/--tenant` flag shared by file commands. */
export const tenantFlag = Flags.string({
  char: "t",
  env: "CACHEROACH_TENANT",
  summary: "Tenant to work in: its ID or its label (as `tenant ls` shows them).",
  description:
    "Defaults to the config's defaultTenant (set by bootstrap), else the tenant of the config's session " +
    "when it is scoped to a location. A label must name exactly one tenant you can see (else exit 4 " +
    "when none does, exit 2 when several do).",
  helpValue: "<tenant>",
});

/**
 * Normalises a server URL given on the command line: http(s) only, scheme, host and port only (a
 * cacheroach server's API is at the root), no trailing slash. A URL that is not one, lacks the
 * scheme, has another scheme or a path reaches no cacheroach server: exit 7 (code bad_server_url),
 * as the same URL in a config file is; credentials in it are bad usage (exit 2).
 */
export function normalizeServerUrl(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UserError(
      `"${text}" is not a URL`,
      ExitCode.unavailable,
      [`use the full URL, e.g. http://${text.replace(/^\/+/, "")}`],
      BAD_SERVER_URL,
    );
  }
  if (url.username || url.password) {
    throw new UserError(`server URL "${text}" must not contain credentials`, ExitCode.usage, [
      "use `cacheroach auth set` to store a token",
    ]);
  }
  const problem = serverUrlProblem(text);
  if (problem) {
    throw new UserError(
      `server URL "${text}" ${problem.problem}`,
      ExitCode.unavailable,
      [`use ${problem.use ?? "http://host:port"}`],
      BAD_SERVER_URL,
    );
  }
  return `${url.protocol}//${url.host}`;
}

export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override baseFlags = {
    config: Flags.string({
      char: "c",
      env: CONFIG_ENV,
      summary: "Config file to use.",
      description: "Default: ~/.cacheroach/config. Holds the server URL, token and default tenant.",
      helpGroup: "GLOBAL",
      helpValue: "<file>",
    }),
    verbose: Flags.boolean({
      char: "v",
      summary: "Log every RPC and full error details to stderr.",
      helpGroup: "GLOBAL",
    }),
  };

  static override enableJsonFlag = true;

  protected flags!: CmdFlags<T>;
  protected args!: CmdArgs<T>;
  /** All positional arguments, in order (for variadic commands, `strict = false`). */
  protected positionals: string[] = [];

  private readonly transports: ClientTransport[] = [];
  private cliConfig: CliConfig | undefined;

  public override async init(): Promise<void> {
    await super.init();
    const baseFlags = (super.ctor as typeof BaseCommand).baseFlags;
    // Variadic commands: oclif sees only the declared arguments (see argv-split.ts).
    const split =
      this.ctor.strict === false
        ? splitPositionals(
            this.argv,
            { ...baseFlags, ...this.ctor.flags, json: { type: "boolean" } },
            Object.keys(this.ctor.args ?? {}).length,
          )
        : { forParser: this.argv, extra: [] };
    const { args, argv, flags } = await this.parse(
      {
        flags: this.ctor.flags,
        baseFlags,
        enableJsonFlag: this.ctor.enableJsonFlag,
        args: this.ctor.args,
        strict: this.ctor.strict,
      },
      split.forParser,
    );
    this.flags = flags as CmdFlags<T>;
    this.args = args as CmdArgs<T>;
    this.positionals = [...argv.map(String), ...split.extra];
  }

  /** Absolute path of the config file in use. */
  protected get configPath(): string {
    return resolveConfigPath(this.flags?.config);
  }

  /** The config file (read once). */
  protected async loadCliConfig(): Promise<CliConfig> {
    this.cliConfig ??= await loadConfig(this.configPath);
    return this.cliConfig;
  }

  /** Writes a line to stderr when --verbose is on (even with --json). */
  protected verbose(msg: string): void {
    if (this.flags?.verbose) process.stderr.write(`[cacheroach] ${msg}\n`);
  }

  /** How long calls are retried while the server says it is unavailable (CACHEROACH_RETRY_SECONDS). */
  private retryBudget(): number {
    try {
      return retryBudgetFromEnv();
    } catch (err) {
      throw new UserError((err as Error).message, ExitCode.usage);
    }
  }

  /** A client for `service` at `server`, sending `token` as the bearer token. */
  protected clientFor<S extends DescService>(service: S, server: string, token: string): Client<S> {
    const auth: Interceptor = (next) => async (req) => {
      if (token) req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    };
    const onRetry = (method: string, attempt: number, delayMs: number, err: ConnectError) =>
      this.verbose(
        `${method} unavailable (${err.rawMessage}); attempt ${attempt + 1} in ${(delayMs / 1000).toFixed(1)} s`,
      );
    const interceptors: Interceptor[] = [auth, retryUnavailable({ budgetMs: this.retryBudget(), onRetry })];
    // Innermost: a wrong URL (TLS on a plain port, another kind of server) is said once, plainly.
    const diagnose = diagnoseWrongServer(server);
    if (this.flags?.verbose) {
      interceptors.push((next) => async (req) => {
        const t0 = performance.now();
        const name = `${req.service.typeName}/${req.method.name}`;
        try {
          const res = await next(req);
          this.verbose(`${name} ok ${(performance.now() - t0).toFixed(1)} ms`);
          return res;
        } catch (err) {
          const ce = ConnectError.from(err);
          this.verbose(
            `${name} ${codeName(ce.code)} ${(performance.now() - t0).toFixed(1)} ms: ${ce.rawMessage}`,
          );
          throw err;
        }
      });
    }
    interceptors.push(diagnose);
    const t = makeTransport(server, transportKindFromEnv(), interceptors);
    this.transports.push(t);
    this.verbose(`transport ${t.kind} to ${server}`);
    return createClient(service, t.transport);
  }

  /** A client for `service` authenticated with the config's token. */
  protected async client<S extends DescService>(service: S): Promise<Client<S>> {
    const cfg = await this.loadCliConfig();
    if (cfg.token === "") {
      throw new UserError(
        `not logged in: the config ${this.configPath} has no token (after \`cacheroach auth logout\`)`,
        ExitCode.auth,
        [
          "cacheroach auth set <http(s)://<token>@server/>   (a token someone issued to you)",
          "cacheroach bootstrap <server-url> --data-dir <server data dir>   (as the operator)",
        ],
        "not_logged_in",
      );
    }
    const bad = badServerUrlError(cfg.server, `the config ${this.configPath}`);
    if (bad) throw bad;
    return this.clientFor(service, cfg.server, cfg.token);
  }

  private current: Promise<Session> | undefined;

  /** The config's session as the server sees it (Tokens.Current), asked once per command. */
  protected currentSession(): Promise<Session> {
    this.current ??= this.client(Tokens).then((t) => t.current({}));
    return this.current;
  }

  /**
   * The expiry for a session or URL wanted for `ms` from now, capped at the caller's own session
   * expiry (the server refuses anything later; only the key-signed bootstrap token is exempt).
   */
  protected async cappedExpiry(ms: number): Promise<{ expiresAt: Timestamp; capped: boolean; limit?: Date }> {
    const me = await this.currentSession();
    const wanted = new Date(Date.now() + ms);
    const bootstrap = me.id === "" && me.scope?.kind.case === "superToken";
    if (!bootstrap && me.expiresAt && timestampDate(me.expiresAt) < wanted) {
      return { expiresAt: me.expiresAt, capped: true, limit: timestampDate(me.expiresAt) };
    }
    return { expiresAt: timestampFromDate(wanted), capped: false };
  }

  private readonly httpClients: HttpClient[] = [];
  private readonly chunkSenders: ChunkBodies[] = [];

  /**
   * Where uploads send new chunks as streamed bodies (the config's server and token), closed when
   * the command ends; undefined when CACHEROACH_CHUNK_UPLOAD=rpc asks for PutChunks.
   */
  protected async chunkBodies(): Promise<ChunkBodies | undefined> {
    let wanted: boolean;
    try {
      wanted = chunkBodiesFromEnv();
    } catch (err) {
      throw new UserError((err as Error).message, ExitCode.usage);
    }
    if (!wanted) return undefined;
    const cfg = await this.loadCliConfig();
    const c = new ChunkBodies(cfg.server, cfg.token);
    this.chunkSenders.push(c);
    return c;
  }

  /** A plain-HTTP client (signed URLs), closed when the command ends. */
  protected httpClient(): HttpClient {
    const c = new HttpClient();
    this.httpClients.push(c);
    return c;
  }

  /**
   * The tenant to work in: `--tenant` > config defaultTenant > tenant of the config session's
   * location scope; otherwise a usage error.
   */
  protected async resolveTenant(flag: string | undefined): Promise<string> {
    if (flag !== undefined) return this.tenantId(flag, "-t/--tenant");
    const cfg = await this.loadCliConfig();
    if (cfg.defaultTenant) return cfg.defaultTenant;
    const scope = configSession(cfg)?.scope?.kind;
    if (scope?.case === "onLocation" && scope.value.tenantId) return scope.value.tenantId;
    throw new UserError("--tenant required: no default tenant in the config", ExitCode.usage, [
      "pass -t <tenant ID or label>",
      "or set a default: cacheroach tenant default <tenant ID or label>",
    ]);
  }

  /**
   * The tenant `text` names: a UUID as is, else the one tenant visible to this session whose label
   * it is (names.ts: exit 4 when none, exit 2 when several). `source` names the flag or argument.
   */
  protected async tenantId(text: string, source: string): Promise<string> {
    const id = asId(text);
    if (id) return id;
    if (text.trim() === "")
      throw new UserError(`${source}: a tenant ID or label is required`, ExitCode.usage);
    const tenants: Named[] = [];
    for await (const t of (await this.client(Tenants)).list({})) {
      tenants.push({ id: t.id, names: [t.label], describe: `${t.id} version ${t.version}` });
    }
    return pickByName(tenants, text, { kind: "tenant", source, list: "cacheroach tenant ls" }).id;
  }

  /**
   * The principal `text` names: a UUID as is, else the one principal whose label (claims.name) or
   * email it is. Listing principals needs a super session; other sessions can name only their own
   * principal (anything else: exit 3, pass the ID).
   */
  protected async principalId(text: string, source: string): Promise<string> {
    const id = asId(text);
    if (id) return id;
    if (text.trim() === "")
      throw new UserError(`${source}: a principal ID or name is required`, ExitCode.usage);
    const what = { kind: "principal", source, list: "cacheroach principal ls" };
    const principals = await this.client(Principals);
    const named = (p: Principal): Named => ({
      id: p.id,
      names: [p.label, p.email].filter((n) => n !== ""),
      describe: `${p.id}${p.email ? ` <${p.email}>` : ""}`,
    });
    const all: Named[] = [];
    try {
      for await (const p of principals.list({})) all.push(named(p));
    } catch (err) {
      if (!(err instanceof ConnectError) || err.code !== Code.PermissionDenied) throw err;
      // Not super: an email is looked up directly; of names, only the caller's own.
      if (text.includes("@")) {
        try {
          return (await principals.load({ kind: { case: "email", value: text.trim() } })).id;
        } catch (e) {
          if (!(e instanceof ConnectError) || e.code !== Code.NotFound) throw e;
          return pickByName<Named>([], text, what).id;
        }
      }
      const me = await this.currentSession();
      const own = me.principalId
        ? await principals.load({ kind: { case: "id", value: me.principalId } }).catch(() => undefined)
        : undefined;
      if (own && named(own).names.some((n) => n.toLowerCase() === text.toLowerCase())) return own.id;
      throw new UserError(
        `${source}: "${text}" is not an ID, and looking principals up by name needs a super session ` +
          "(other sessions can use an email, or their own name)",
        ExitCode.auth,
        ["pass the principal's ID (its owner sees it with `cacheroach auth whoami`) or its email"],
        "principal_name_needs_super",
      );
    }
    return pickByName(all, text, what).id;
  }

  private readonly tenantChecks = new Map<string, Promise<UserError | undefined>>();

  /**
   * Explains a NotFound: when the tenant itself does not exist (or is invisible to the caller),
   * returns an error saying so; otherwise undefined (the file is what is missing). Asked at most
   * once per tenant per command, and only after something was not found.
   */
  protected tenantProblem(tenantId: string): Promise<UserError | undefined> {
    let check = this.tenantChecks.get(tenantId);
    if (!check) {
      check = (async () => {
        try {
          await (await this.client(Tenants)).get({ id: tenantId });
          return undefined;
        } catch (err) {
          if (ConnectError.from(err).code !== Code.NotFound) return undefined;
          return new UserError(
            `tenant ${tenantId} does not exist (or is not visible to this session)`,
            ExitCode.notFound,
            [
              "list the tenants you can use: cacheroach tenant ls",
              "pick another with -t <tenant ID or label>",
            ],
            "tenant_not_found",
          );
        }
      })();
      this.tenantChecks.set(tenantId, check);
    }
    return check;
  }

  /** If `err` is a NotFound caused by a missing tenant, that explanation; else `err`. */
  protected async explainNotFound(err: unknown, tenantId: string): Promise<unknown> {
    if (!(err instanceof ConnectError) || err.code !== Code.NotFound) return err;
    return (await this.tenantProblem(tenantId)) ?? err;
  }

  /** The per-item results of a many-item command, printed through this command. */
  protected itemResults<Ok, Failed>(total: number): ItemResults<Ok, Failed> {
    return new ItemResults<Ok, Failed>(
      {
        jsonEnabled: () => this.jsonEnabled(),
        logJson: (json) => this.logJson(json),
        logToStderr: (message) => this.logToStderr(message),
      },
      total,
    );
  }

  /**
   * Describes the failure of one item of a many-item command (file put, get, fetch, rm; session
   * rm) with the command's context. With `explainNotFound` (and a tenant), a NotFound is first
   * checked against the tenant, and an error that is already phrased for the user (such as the
   * missing tenant) is thrown: it ends the command, not one item.
   */
  protected async describeItemFailure(
    err: unknown,
    opts: { tenant?: string; explainNotFound?: boolean } = {},
  ): Promise<ItemFailure> {
    let error = err;
    if (opts.explainNotFound && opts.tenant !== undefined) {
      error = await this.explainNotFound(err, opts.tenant);
      if (error instanceof UserError) throw error;
    }
    const context =
      opts.tenant === undefined ? this.failureContext() : { ...this.failureContext(), tenant: opts.tenant };
    return { error, described: describeError(error, context) };
  }

  /** Context used to phrase RPC errors. */
  protected failureContext(): FailureContext {
    const command = this.id ? { command: this.id.replaceAll(":", " ") } : {};
    return this.cliConfig ? { server: this.cliConfig.server, ...command } : command;
  }

  /** Maps any error to a clear message, suggestion and exit code (see errors.ts). */
  protected override async catch(err: Error & { exitCode?: number }): Promise<unknown> {
    // oclif's own errors (bad flags, --help, exit) already carry their message and exit code.
    if (err instanceof Errors.CLIError || (err as { oclif?: unknown }).oclif !== undefined) {
      return super.catch(err);
    }
    if (this.flags?.verbose && err?.stack) process.stderr.write(`${err.stack}\n`);
    const ue = describeError(err, this.failureContext());
    process.exitCode = ue.exit;
    return super.catch(toCliError(ue));
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    for (const t of this.transports.splice(0)) t.close();
    for (const c of this.httpClients.splice(0)) c.close();
    for (const c of this.chunkSenders.splice(0)) c.close();
    return super.finally(err);
  }
}
