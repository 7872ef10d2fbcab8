/**
 * Write preconditions from the command line, as HTTP has them: --if-match VERSION|ETAG (the live
 * file must be at that version, or hold that content: its ETag is its content hash) and
 * --if-none-match (create only; the same as --no-clobber).
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { FileMeta, PreconditionSchema } from "@cacheroach/proto";
import { ExitCode, UserError } from "./errors.js";

export type PreconditionInit = MessageInitShape<typeof PreconditionSchema>;

/** Parses --if-match: a version number, or a content hash / ETag (64 hex digits, quotes allowed). */
export function parseIfMatch(text: string): PreconditionInit {
  const t = text.trim();
  if (/^[1-9]\d{0,17}$/.test(t)) return { kind: { case: "version", value: BigInt(t) } };
  const etag = t
    .replace(/^W\//, "")
    .replace(/^"(.*)"$/, "$1")
    .toLowerCase();
  if (/^[0-9a-f]{64}$/.test(etag)) return { kind: { case: "contentHash", value: Buffer.from(etag, "hex") } };
  throw new UserError(
    `--if-match "${text}" is neither a version number nor an ETag (64 hex digits)`,
    ExitCode.usage,
    ["see a file's versions and content hashes with: cacheroach file versions --json <path>"],
  );
}

/** The precondition of `file put`'s flags, or undefined for none. */
export function putPrecondition(flags: {
  "no-clobber"?: boolean;
  "if-none-match"?: boolean;
  "if-match"?: string | undefined;
}): PreconditionInit | undefined {
  const create = flags["no-clobber"] || flags["if-none-match"];
  if (create && flags["if-match"] !== undefined) {
    throw new UserError("--if-match cannot be combined with --if-none-match/--no-clobber", ExitCode.usage);
  }
  if (create) return { kind: { case: "mustNotExist", value: true } };
  if (flags["if-match"] !== undefined) return parseIfMatch(flags["if-match"]);
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
