import { type Tenant, type TenantPolicy, Tenants } from "@cacheroach/proto";
import { Code, ConnectError } from "@connectrpc/connect";
import { Args, Flags } from "@oclif/core";
import { BaseCommand } from "../../lib/base-command.js";
import { EXIT_CODES_HELP, ExitCode, UserError } from "../../lib/errors.js";
import { parseDuration, parseSize } from "../../lib/format.js";
import { policyLines, type TenantWideJson, tenantWideJson } from "../../lib/tenant-json.js";

/** Words that clear a setting back to the server's default. */
const DEFAULT_WORDS = new Set(["default", "none"]);
/** Words for an explicit "no limit" (stored as 0). */
const UNLIMITED_WORDS = new Set(["unlimited"]);

type PolicyField = "quotaBytes" | "maxOpenUploads" | "retainVersions" | "retainSeconds";

export default class TenantSet extends BaseCommand<typeof TenantSet> {
  static override summary = "Set a tenant's quota, open-upload limit and retention.";

  static override description =
    `Changes a tenant's own storage policy; settings you do not name keep their value. Needs a super session. Each value may be "default" (or "none"): the tenant then has no value of its own and the server's setting applies (start flags --default-quota, --max-open-uploads, --retain-versions, --retain).

--quota SIZE: physical bytes (the distinct chunks the tenant stores, see \`tenant ls --wide\`) it may hold. A write that would store new chunks beyond it is refused ("over quota", HTTP 507) and writes nothing; writing content the tenant already stores is always allowed. "unlimited" or 0: no quota, whatever the server's default. Sizes take binary (KiB, MiB, GiB, TiB) or decimal (KB, MB, GB, TB) units.

--max-open-uploads N: uploads one principal may have begun and not yet committed (nor let expire) in the tenant; one more is refused. "unlimited" or 0: no limit.

--retain-versions N and --retain DURATION: what garbage collection keeps of deleted or superseded file versions: the N most recent of each path whatever their age, and any younger than DURATION (e.g. 30d, 12h, 0s).

Limits apply at once on the server that answered, within 5 seconds on others. The change is guarded by the tenant's version like every tenant change: if someone changed the tenant meanwhile it fails (exit 5) and changes nothing; run it again.

${EXIT_CODES_HELP}`;

  static override examples = [
    {
      description: "A 10 GiB quota, and keep 5 old versions of each file for 30 days",
      command:
        "<%= config.bin %> <%= command.id %> 5b3c2d4e-0000-4000-8000-000000000001 --quota 10GiB --retain-versions 5 --retain 30d",
    },
    {
      description: "Back to the server's default quota",
      command: "<%= config.bin %> <%= command.id %> 5b3c2d4e-0000-4000-8000-000000000001 --quota default",
    },
    {
      description: "No quota for this tenant, even if the server sets a default",
      command: "<%= config.bin %> <%= command.id %> 5b3c2d4e-0000-4000-8000-000000000001 --quota unlimited",
    },
    {
      description: "Show the policy in force without changing it (a tenant may be named by its label)",
      command: '<%= config.bin %> <%= command.id %> "Default Scratchpad"',
    },
  ];

  static override args = {
    tenant: Args.string({
      required: true,
      description: "The tenant: its name (label) or ID (see `cacheroach tenant ls`)",
    }),
  };

  static override flags = {
    quota: Flags.string({
      summary: 'Physical bytes the tenant may store: a size (10GiB), "unlimited", or "default".',
      helpValue: "<size|unlimited|default>",
    }),
    "max-open-uploads": Flags.string({
      summary: 'Uploads one principal may have open in the tenant: a number, "unlimited", or "default".',
      helpValue: "<n|unlimited|default>",
    }),
    "retain-versions": Flags.string({
      summary: 'Deleted or superseded versions of each path to keep whatever their age, or "default".',
      helpValue: "<n|default>",
    }),
    retain: Flags.string({
      summary: 'How long deleted or superseded versions are kept (30d, 12h, 0s), or "default".',
      helpValue: "<duration|default>",
    }),
  };

  public async run(): Promise<TenantWideJson & { changed: boolean }> {
    // Every value is checked before the server is asked anything (even to look a name up).
    const changes: Partial<Record<PolicyField, bigint | undefined>> = {};
    const f = this.flags;
    if (f.quota !== undefined)
      changes.quotaBytes = value("--quota", f.quota, true, (t) => parseSize(t, "--quota"));
    if (f["max-open-uploads"] !== undefined)
      changes.maxOpenUploads = value("--max-open-uploads", f["max-open-uploads"], true, count);
    if (f["retain-versions"] !== undefined)
      changes.retainVersions = value("--retain-versions", f["retain-versions"], false, count);
    if (f.retain !== undefined) changes.retainSeconds = value("--retain", f.retain, false, seconds);
    const id = await this.tenantId(this.args.tenant, "tenant");
    const tenants = await this.client(Tenants);
    let stored: Tenant;
    try {
      stored = (await tenants.get({ id })).tenant!;
    } catch (err) {
      if (err instanceof ConnectError && err.code === Code.NotFound) {
        throw new UserError(
          `tenant ${id} does not exist (or is not visible to this session); nothing was changed`,
          ExitCode.notFound,
          ["list tenants with `cacheroach tenant ls`"],
          "tenant_not_found",
        );
      }
      throw err;
    }
    let result = tenantWideJson(stored);
    const changed = Object.keys(changes).length > 0;
    if (changed) {
      const policy: Partial<TenantPolicy> = {
        quotaBytes: stored.policy?.quotaBytes,
        maxOpenUploads: stored.policy?.maxOpenUploads,
        retainVersions: stored.policy?.retainVersions,
        retainSeconds: stored.policy?.retainSeconds,
        ...changes,
      };
      try {
        const res = await tenants.ensure({
          tenant: { id, label: stored.label, version: stored.version, policy },
        });
        result = tenantWideJson(res.tenant!);
      } catch (err) {
        if (err instanceof ConnectError && err.code === Code.Aborted) {
          throw new UserError(
            `tenant ${id} changed while its policy was being set (it is no longer at version ${stored.version}); nothing was changed`,
            ExitCode.conflict,
            ["run the command again"],
            "version_mismatch",
          );
        }
        throw err;
      }
    }
    this.log(
      `Tenant ${id} ("${result.label}")${changed ? ` is now at version ${result.version}` : ""}:\n  ${policyLines(result).join("\n  ")}`,
    );
    return { ...result, changed };
  }
}

/**
 * A flag's value: undefined for "default"/"none" (the server's default), 0 for "unlimited" where
 * allowed, else `parse(text)`, which must be a whole number ≥ 0.
 */
function value(
  flag: string,
  text: string,
  unlimited: boolean,
  parse: (t: string) => number,
): bigint | undefined {
  const t = text.trim().toLowerCase();
  if (DEFAULT_WORDS.has(t)) return undefined;
  if (unlimited && UNLIMITED_WORDS.has(t)) return 0n;
  let n: number;
  try {
    n = parse(text);
  } catch (err) {
    if (err instanceof UserError) {
      throw new UserError(
        `${flag}: ${err.message}; nothing was changed`,
        ExitCode.usage,
        err.suggestions,
        "bad_flag",
      );
    }
    throw err;
  }
  return BigInt(n);
}

/** A whole number ≥ 0. */
function count(text: string): number {
  if (!/^\s*\d+\s*$/.test(text) || !Number.isSafeInteger(Number(text))) {
    throw new UserError(`invalid number "${text}"`, ExitCode.usage, [
      'use a whole number ≥ 0, "unlimited" (where it applies) or "default"',
    ]);
  }
  return Number(text);
}

/** A duration in whole seconds; "0", "0s" and the like are 0. */
function seconds(text: string): number {
  if (/^\s*0+(?:ms|s|m|h|d|w|y)?\s*$/i.test(text)) return 0;
  return Math.round(parseDuration(text) / 1000);
}
