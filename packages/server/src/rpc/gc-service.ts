import { create } from "@bufbuild/protobuf";
import type { Duration } from "@bufbuild/protobuf/wkt";
import { type GarbageCollection, TenantCollectionSchema } from "@cacheroach/proto";
import type { ServiceImpl } from "@connectrpc/connect";
import { CacheroachError } from "../errors.js";
import { parseId } from "../ids.js";
import type { GarbageCollector } from "../lifecycle/gc.js";

/** Longest `older_than` accepted: ten years (beyond, nothing would ever be old enough). */
const MAX_OLDER_THAN_SECONDS = 10 * 366 * 24 * 3600;

/** The GarbageCollection service (super only, see auth/policy.ts). */
export function createGcService(gc: GarbageCollector): ServiceImpl<typeof GarbageCollection> {
  return {
    async *collect(req) {
      const tenantId = req.tenantId === "" ? undefined : parseId(req.tenantId, "tenant_id");
      const olderThanSeconds = req.olderThan ? olderThan(req.olderThan) : undefined;
      const reports = await gc.run({ tenantId, olderThanSeconds, dryRun: req.dryRun });
      for (const r of reports) {
        yield create(TenantCollectionSchema, {
          tenantId: r.tenantId,
          label: r.label,
          deleted: r.deleted,
          versions: BigInt(r.versions),
          versionBytes: BigInt(r.versionBytes),
          uploads: BigInt(r.uploads),
          ropes: BigInt(r.ropes),
          chunks: BigInt(r.chunks),
          bytes: BigInt(r.bytes),
          pendingChunks: BigInt(r.pendingChunks),
          pendingBytes: BigInt(r.pendingBytes),
          lostRaces: BigInt(r.lostRaces),
          error: r.error ?? "",
          dryRun: req.dryRun,
        });
      }
    },
  };
}

function olderThan(d: Duration): number {
  const seconds = Number(d.seconds) + d.nanos / 1e9;
  if (!Number.isFinite(seconds) || seconds < 0 || seconds > MAX_OLDER_THAN_SECONDS) {
    throw new CacheroachError(
      "ERR_BAD_REQUEST",
      `older_than must be between 0 s and ${MAX_OLDER_THAN_SECONDS} s (ten years)`,
    );
  }
  return seconds;
}
