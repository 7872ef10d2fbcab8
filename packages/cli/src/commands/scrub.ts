import { Scrub, ScrubProblemKind, type ScrubTenantSummary } from "@cacheroach/proto";
import { Flags } from "@oclif/core";
import { BaseCommand } from "../lib/base-command.js";
import { EXIT_CODES_HELP, ExitCode, IntegrityError } from "../lib/errors.js";
import { formatBytes, parseSize, table } from "../lib/format.js";

/** A problem as JSON. */
export interface ScrubProblemJson {
  tenantId: string;
  kind: "chunk_corrupt" | "chunk_missing" | "chunk_wrong_length" | "rope_mismatch" | "unknown";
  /** Hex BLAKE3 key of the chunk concerned ("" for a rope problem). */
  chunkHash: string;
  /** Hex content hash (rope) concerned ("" for a damaged chunk no content lists). */
  contentHash: string;
  /** The chunk's offset in the content. */
  offset: number;
  detail: string;
  /** The file versions the problem breaks; `live`: the path's current version. */
  files: { path: string; version: number; live: boolean }[];
  /** More versions hold the content than `files` lists (at most 1000 are). */
  moreFiles: boolean;
}

/** A tenant's summary as JSON. */
export interface ScrubTenantJson {
  tenantId: string;
  chunksChecked: number;
  bytesChecked: number;
  ropesChecked: number;
  problems: number;
  seconds: number;
}

/** What `scrub --json` prints. */
export interface ScrubJson {
  tenants: ScrubTenantJson[];
  problems: ScrubProblemJson[];
  /** True when any problem was found (the exit code is then 6). */
  damaged: boolean;
}

const KIND_NAMES: Record<ScrubProblemKind, ScrubProblemJson["kind"]> = {
  [ScrubProblemKind.UNSPECIFIED]: "unknown",
  [ScrubProblemKind.CHUNK_CORRUPT]: "chunk_corrupt",
  [ScrubProblemKind.CHUNK_MISSING]: "chunk_missing",
  [ScrubProblemKind.CHUNK_WRONG_LENGTH]: "chunk_wrong_length",
  [ScrubProblemKind.ROPE_MISMATCH]: "rope_mismatch",
};

function tenantJson(s: ScrubTenantSummary): ScrubTenantJson {
  const ms = s.elapsed ? Number(s.elapsed.seconds) * 1000 + s.elapsed.nanos / 1e6 : 0;
  return {
    tenantId: s.tenantId,
    chunksChecked: Number(s.chunksChecked),
    bytesChecked: Number(s.bytesChecked),
    ropesChecked: Number(s.ropesChecked),
    problems: Number(s.problems),
    seconds: Math.round(ms) / 1000,
  };
}

export default class ScrubCommand extends BaseCommand<typeof ScrubCommand> {
  static override summary = "Check stored data against its hashes and name the files damage breaks.";

  static override description =
    `Asks the server to re-read every stored chunk of a tenant (or of every tenant) and hash it again with BLAKE3, comparing it with the key it is stored under, and to recompute every file content's key (rope hash) from its chunk list, checking every listed chunk is stored with the listed length. It changes nothing. Needs a super session.

Each problem is printed as it is found, with the file versions it breaks as PATH@VERSION ("live": the path's current version, what a download serves; otherwise an older or deleted version). Kinds: chunk_corrupt (the stored bytes do not match their hash), chunk_missing (a content lists a chunk that is not stored), chunk_wrong_length (stored with another length than the content's chunk list says), rope_mismatch (a chunk list that does not match its content's key or size). Then a table per tenant: chunks and bytes re-hashed, contents (ropes) checked, problems.

Reads are paced to the server's --scrub-rate (default 32 MiB/s) unless --rate asks for another; a large tenant takes a while (1 TiB is about 9 hours at 32 MiB/s). Interrupting it is harmless: run it again. Damaged files cannot be repaired by the server: restore them from a backup or write them again.

Exits 6 when any problem was found (with --json too, after printing the report), 0 when none.

${EXIT_CODES_HELP}`;

  static override examples = [
    { description: "Scrub every tenant", command: "<%= config.bin %> <%= command.id %>" },
    {
      description: "Scrub one tenant, as fast as the database allows",
      command: "<%= config.bin %> <%= command.id %> --tenant 6f1c2a4e-0c8b-4d5e-9f00-1a2b3c4d5e6f --rate 0",
    },
    {
      description: "A machine-readable report (exit code 6 if damaged)",
      command: "<%= config.bin %> <%= command.id %> --json",
    },
  ];

  static override flags = {
    tenant: Flags.string({
      char: "t",
      summary: "Scrub only this tenant, by ID or label; default: every tenant.",
      helpValue: "<tenant>",
    }),
    rate: Flags.string({
      summary:
        "Bytes per second to read at most, e.g. 200MiB; 0 = no limit. Default: the server's --scrub-rate.",
      helpValue: "<size>",
    }),
  };

  public async run(): Promise<ScrubJson | undefined> {
    const rate = this.flags.rate === undefined ? undefined : BigInt(parseSize(this.flags.rate, "--rate"));
    const json = this.jsonEnabled();
    const tenantFlag =
      this.flags.tenant === undefined ? undefined : await this.tenantId(this.flags.tenant, "-t/--tenant");
    const out: ScrubJson = { tenants: [], problems: [], damaged: false };
    const progress = !json && process.stderr.isTTY === true;
    const stream = (await this.client(Scrub)).run({
      tenantId: tenantFlag ?? "",
      ...(rate === undefined ? {} : { maxBytesPerSecond: rate }),
    });
    try {
      for await (const e of stream) {
        switch (e.kind.case) {
          case "problem": {
            const p = e.kind.value;
            const problem: ScrubProblemJson = {
              tenantId: p.tenantId,
              kind: KIND_NAMES[p.kind] ?? "unknown",
              chunkHash: Buffer.from(p.chunkHash).toString("hex"),
              contentHash: Buffer.from(p.contentHash).toString("hex"),
              offset: Number(p.offset),
              detail: p.detail,
              files: p.files.map((f) => ({ path: f.path, version: Number(f.version), live: f.live })),
              moreFiles: p.moreFiles,
            };
            out.problems.push(problem);
            if (!json) {
              if (progress) process.stderr.write("\r\x1b[K");
              this.log(problemText(problem));
            }
            break;
          }
          case "progress": {
            const s = tenantJson(e.kind.value);
            if (progress) {
              process.stderr.write(
                `\r\x1b[Kscrubbing ${s.tenantId}: ${s.chunksChecked} chunks, ${formatBytes(s.bytesChecked)}, ${s.ropesChecked} contents…`,
              );
            }
            break;
          }
          case "tenantDone":
            out.tenants.push(tenantJson(e.kind.value));
            break;
        }
      }
    } finally {
      if (progress) process.stderr.write("\r\x1b[K");
    }
    out.damaged = out.problems.length > 0;
    if (json) {
      if (!out.damaged) return out;
      this.logJson(out);
      process.exitCode = ExitCode.integrity;
      return undefined;
    }
    if (out.tenants.length > 0) {
      this.log(
        table(out.tenants, [
          { header: "Tenant", get: (r) => r.tenantId },
          { header: "Chunks", get: (r) => String(r.chunksChecked), right: true },
          { header: "Bytes", get: (r) => formatBytes(r.bytesChecked), right: true },
          { header: "Contents", get: (r) => String(r.ropesChecked), right: true },
          { header: "Problems", get: (r) => String(r.problems), right: true },
          { header: "Time", get: (r) => `${r.seconds.toFixed(1)} s`, right: true },
        ]),
      );
    }
    if (out.damaged) {
      const tenants = new Set(out.problems.map((p) => p.tenantId)).size;
      const e = new IntegrityError(
        `${out.problems.length} problem(s) found in ${tenants} tenant(s): the files listed above are damaged`,
      );
      e.suggestions.push(
        "restore those files from a backup, or write them again",
        "docs/operations.md, Scrub, says what each kind means",
      );
      throw e;
    }
    this.logToStderr(`no damage found in ${out.tenants.length} tenant(s)`);
    return out;
  }
}

/** A problem for people: kind, tenant and what is wrong, then the files it breaks. */
function problemText(p: ScrubProblemJson): string {
  const files =
    p.files.length === 0
      ? "breaks no file"
      : `breaks ${p.files.map((f) => `${f.path}@${f.version}${f.live ? " (live)" : ""}`).join(", ")}${p.moreFiles ? ", and more" : ""}`;
  return `DAMAGED  ${p.kind}  tenant ${p.tenantId}: ${p.detail}\n         ${files}`;
}
