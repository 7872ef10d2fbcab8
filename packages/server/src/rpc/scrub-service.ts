import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import {
  type Scrub,
  type ScrubEvent,
  ScrubEventSchema,
  ScrubProblemKind,
  type ScrubTenantSummary,
  ScrubTenantSummarySchema,
} from "@cacheroach/proto";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { CacheroachError } from "../errors.js";
import { parseId } from "../ids.js";
import type {
  ScrubEvent as Event,
  ScrubProblemKind as Kind,
  Scrubber,
  ScrubTenantSummary as Summary,
} from "../lifecycle/scrub.js";

const KINDS: Record<Kind, ScrubProblemKind> = {
  chunk_corrupt: ScrubProblemKind.CHUNK_CORRUPT,
  chunk_missing: ScrubProblemKind.CHUNK_MISSING,
  chunk_wrong_length: ScrubProblemKind.CHUNK_WRONG_LENGTH,
  rope_mismatch: ScrubProblemKind.ROPE_MISMATCH,
};

/** The Scrub service (super only: auth/policy.ts). */
export function createScrubService(scrubber: Scrubber): ServiceImpl<typeof Scrub> {
  return {
    async *run(req, ctx: HandlerContext) {
      const tenantId = req.tenantId === "" ? undefined : parseId(req.tenantId, "tenant_id");
      const rate = req.maxBytesPerSecond === undefined ? undefined : Number(req.maxBytesPerSecond);
      if (rate !== undefined && rate < 0) {
        throw new CacheroachError("ERR_BAD_REQUEST", "max_bytes_per_second must not be negative");
      }
      for await (const e of scrubber.run({
        tenantId,
        bytesPerSecond: rate,
        signal: ctx.signal,
        trigger: "rpc",
      }))
        yield toMessage(e);
    },
  };
}

function toMessage(e: Event): ScrubEvent {
  switch (e.type) {
    case "problem": {
      const p = e.problem;
      return create(ScrubEventSchema, {
        kind: {
          case: "problem",
          value: {
            tenantId: p.tenantId,
            kind: KINDS[p.kind],
            chunkHash: p.chunk ?? new Uint8Array(),
            contentHash: p.rope ?? new Uint8Array(),
            offset: BigInt(p.offset ?? 0),
            detail: p.detail,
            files: p.files.map((f) => ({ path: f.path, version: BigInt(f.version), live: f.live })),
            moreFiles: p.moreFiles,
          },
        },
      });
    }
    case "progress":
      return create(ScrubEventSchema, { kind: { case: "progress", value: toSummary(e.progress) } });
    case "tenant":
      return create(ScrubEventSchema, { kind: { case: "tenantDone", value: toSummary(e.summary) } });
  }
}

function toSummary(s: Summary): ScrubTenantSummary {
  return create(ScrubTenantSummarySchema, {
    tenantId: s.tenantId,
    chunksChecked: BigInt(s.chunks),
    bytesChecked: BigInt(s.bytes),
    ropesChecked: BigInt(s.ropes),
    problems: BigInt(s.problems),
    elapsed: durationFromMs(Math.round(s.seconds * 1000)),
  });
}
