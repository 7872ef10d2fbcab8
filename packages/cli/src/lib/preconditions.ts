/**
 * Write preconditions from the command line, as HTTP has them: --if-match VERSION|ETAG (the live
 * file must be at that version, or hold that content: its ETag is its content hash) and
 * --if-none-match (create only; the same as --no-clobber).
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { FileMeta, PreconditionSchema } from "@cacheroach/proto";
import { ExitCode, UserError } from "./errors.js";
import { shellWord } from "./invocation.js";
import { hex } from "./rope-hash.js";

export type PreconditionInit = MessageInitShape<typeof PreconditionSchema>;

/** The precondition flags of `file put`. */
export interface PreconditionFlags {
  "no-clobber"?: boolean;
  "if-none-match"?: boolean;
  "if-match"?: string | undefined;
}

/** Parses --if-match: a version number, or a content hash / ETag (64 hex digits, quotes allowed). */
export function parseIfMatch(text: string, path?: string): PreconditionInit {
  const t = text.trim();
  if (/^[1-9]\d{0,17}$/.test(t)) return { kind: { case: "version", value: BigInt(t) } };
  const etag = t
    .replace(/^W\//, "")
    .replace(/^"(.*)"$/, "$1")
    .toLowerCase();
  if (/^[0-9a-f]{64}$/.test(etag)) return { kind: { case: "contentHash", value: Buffer.from(etag, "hex") } };
  const where = path === undefined ? "<path>" : shellWord(path);
  if (/^[0-9a-f]{4,63}$/.test(etag)) {
    // Most likely the short hash `file ls -w` shows: an ETag must be whole to compare content.
    throw new UserError(
      `--if-match "${text}" looks like a shortened content hash (${etag.length} hex digits, as \`file ls -w\` shows); --if-match needs the whole ETag (64 hex digits) or a version number`,
      ExitCode.usage,
      [
        `the full ETag is the "contentHash" of: cacheroach file ls --json ${where}`,
        `or pick a version or content hash from: cacheroach file versions --json ${where}`,
      ],
    );
  }
  throw new UserError(
    `--if-match "${text}" is neither a version number nor an ETag (64 hex digits)`,
    ExitCode.usage,
    [`see a file's versions and content hashes with: cacheroach file versions --json ${where}`],
  );
}

/**
 * The error for a write the server refused because the precondition of `flags` did not hold,
 * phrased for the flag the user gave, with what `path` holds now (`head`; undefined: no live file).
 */
export function preconditionFailed(
  path: string,
  flags: PreconditionFlags,
  head: FileMeta | undefined,
): UserError {
  const p = shellWord(path);
  const code = "failed_precondition";
  if (flags["if-match"] !== undefined) {
    const given = `--if-match ${shellWord(flags["if-match"])}`;
    if (!head) {
      return new UserError(
        `precondition failed: ${path} does not exist (${given} needs a live file at that version or content); nothing was written`,
        ExitCode.conflict,
        [
          `to create it, drop --if-match (with --no-clobber it is written only while it does not exist)`,
          `if it was deleted, see its versions: cacheroach file versions ${p}`,
        ],
        code,
      );
    }
    return new UserError(
      `precondition failed: ${path} is at version ${head.version} (ETag ${hex(head.contentHash)}), which does not match ${given}; nothing was written`,
      ExitCode.conflict,
      [
        `see its versions: cacheroach file versions ${p}`,
        `to overwrite version ${head.version}: --if-match ${head.version}; to overwrite whatever is there, drop --if-match`,
      ],
      code,
    );
  }
  const flag = flags["no-clobber"] ? "--no-clobber" : "--if-none-match";
  return new UserError(
    `precondition failed: ${path} already exists${head ? ` (version ${head.version})` : ""}, and ${flag} only creates; nothing was written`,
    ExitCode.conflict,
    [
      `to overwrite it, drop ${flag}${head ? ` (or use --if-match ${head.version} to overwrite only that version)` : ""}`,
    ],
    code,
  );
}

/** The precondition of `file put`'s flags, or undefined for none. */
export function putPrecondition(flags: PreconditionFlags, path?: string): PreconditionInit | undefined {
  const create = flags["no-clobber"] || flags["if-none-match"];
  if (create && flags["if-match"] !== undefined) {
    throw new UserError("--if-match cannot be combined with --if-none-match/--no-clobber", ExitCode.usage);
  }
  if (create) return { kind: { case: "mustNotExist", value: true } };
  if (flags["if-match"] !== undefined) return parseIfMatch(flags["if-match"], path);
  return undefined;
}

/** Whether the live file `head` (undefined: none) satisfies `pre`. */
export function satisfies(head: FileMeta | undefined, pre: PreconditionInit | undefined): boolean {
  const kind = pre?.kind;
  if (!kind?.case) return true;
  switch (kind.case) {
    case "mustNotExist":
      return head === undefined;
    case "mustExist":
      return head !== undefined;
    case "version":
      return head !== undefined && head.version === BigInt(kind.value);
    case "contentHash":
      return head !== undefined && Buffer.from(head.contentHash).equals(Buffer.from(kind.value));
    default:
      return false;
  }
}
