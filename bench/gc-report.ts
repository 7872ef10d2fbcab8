/**
 * Rows 8 and 9 in the result table (rates against their limits), and the detail that does not fit
 * it — per-kind rates, wall and work time, the phases of each run, the latency percentiles of every
 * part of the load, how the garbage was built — as the "Garbage collection" section of the report.
 */

import { GC_HEADING } from "./document.js";
import { describeGarbage, type TimedCollection } from "./garbage.js";
import type { GcLatency } from "./gc-latency.js";
import type { GcThroughput } from "./gc-throughput.js";
import type { LatencyStats } from "./get-latency.js";
import { MiB } from "./payload.js";
import { fmt, ratioRow, type TableRow } from "./report.js";

/** The table rows of 8 and 9. */
export function gcRows(t: GcThroughput, l: GcLatency): TableRow[] {
  const what = `${t.chunks} × ${t.setup.size / 1024} KiB dead files`;
  const rawSeconds = t.raw.seconds;
  const rawRef = (value: number) => ({ name: "raw batched DELETE", value });
  const c = l.concurrency;
  return [
    ratioRow(
      `8. GC ${what}, chunks`,
      t.chunks / t.workSeconds,
      "chunks/s",
      rawRef(t.raw.rows.chunks / rawSeconds),
      undefined,
    ),
    ratioRow(
      `8. GC ${what}, bytes`,
      t.bytes / MiB / t.workSeconds,
      "MiB/s",
      rawRef(t.raw.chunkBytes / MiB / rawSeconds),
      undefined,
    ),
    ratioRow(
      `9. p50 GET 4 KiB ×${c} during GC`,
      l.underGc.p50,
      "ms",
      { name: "idle", value: l.idle.p50 },
      undefined,
    ),
    ratioRow(
      `9. p99 GET 4 KiB ×${c} during GC`,
      l.underGc.p99,
      "ms",
      { name: "idle", value: l.idle.p99 },
      undefined,
    ),
  ];
}

/** One-line notes for the table. */
export function gcNotes(t: GcThroughput, l: GcLatency): string[] {
  return [
    `GC rates (row 8) are over the work time: the Collect call's wall time (${t.run.seconds.toFixed(1)} s) minus the ${t.run.marginMs / 1000} s safety margin the run sleeps between condemning and sweeping (${t.workSeconds.toFixed(1)} s); with the wait included: ${fmt(t.chunks / t.run.seconds, "chunks/s")}. The limit deletes the same rows (versions, ropes and their lists, chunks) from scratch copies, 1000 per statement, with no reference checks. Details in the "Garbage collection" section.`,
    `Row 9: GETs started while the collection waited out its margin are left out of "during GC" (${l.duringWait ? `${l.duringWait.count} GETs, p99 ${l.duringWait.p99.toFixed(2)} ms` : "the wait was not located: none left out"}); the ratio is during ÷ idle (higher is worse).`,
  ];
}

/** The "Garbage collection" section (Markdown, also printed). */
export function gcSection(t: GcThroughput, l: GcLatency): string {
  const s = (x: number) => `${x.toFixed(1)} s`;
  const rate = (n: number, seconds: number) => (seconds > 0 ? fmt(n / seconds, "/s") : "—");
  const runLine = (name: string, r: TimedCollection) => {
    const work = r.seconds - r.marginMs / 1000;
    const rep = r.report;
    const [v, ro, ch, b] = [Number(rep.versions), Number(rep.ropes), Number(rep.chunks), Number(rep.bytes)];
    return `| ${name} | ${s(r.seconds)} | ${s(r.marginMs / 1000)} | ${s(work)} | ${phases(r)} | ${v} | ${ro} | ${ch} | ${(b / MiB).toFixed(0)} | ${rate(v, work)} | ${rate(ro, work)} | ${rate(ch, work)} | ${fmt(b / MiB / work, "MiB/s")} |`;
  };
  const raw = t.raw;
  const rawLine = `| limit: raw batched DELETE of the same rows | ${s(raw.seconds)} | — | ${s(raw.seconds)} | ${raw.statements} statements | ${raw.rows.file_versions} | ${raw.rows.ropes} (+ ${raw.rows.rope_chunks} list rows) | ${raw.rows.chunks} | ${(raw.chunkBytes / MiB).toFixed(0)} | ${rate(raw.rows.file_versions, raw.seconds)} | ${rate(raw.rows.ropes, raw.seconds)} | ${rate(raw.rows.chunks, raw.seconds)} | ${fmt(raw.chunkBytes / MiB / raw.seconds, "MiB/s")} |`;
  const lat = (name: string, x: LatencyStats | undefined) =>
    x
      ? `| ${name} | ${x.count} | ${x.perSecond.toFixed(0)} | ${x.p50.toFixed(2)} | ${x.p90.toFixed(2)} | ${x.p99.toFixed(2)} | ${x.max.toFixed(1)} |`
      : `| ${name} | — | — | — | — | — | — |`;
  return `${GC_HEADING}

Each garbage tenant is built through the API (\`bench/garbage.ts\`): small random files written with
\`Uploads.PutFiles\` (1000 per call, 4 calls in flight), each its own chunk, rope and version; then
one in twenty deleted with \`Files.Delete\` (32 calls in flight) and the others replaced by an empty file
with \`Uploads.PutFiles\` (deleting all of them one RPC at a time would take minutes; a replaced
version is dead from the next write as a deleted one is from its deletion, and both are collected
alike; the empty files share one rope without chunks). Row 8: ${describeGarbage(t.setup)}. Row 9:
${describeGarbage(l.setup)}. Then one \`GarbageCollection.Collect { tenant_id, older_than: 0s }\` of the tenant. A run that condemns
chunks sleeps the server's safety margin once, between condemning them and sweeping them: "work"
is the wall time minus that wait. The phases (before the wait: versions, ropes, condemning
chunks; after it: sweeping) are located by watching the tenant's usage row every 100 ms (the first
sweep statement lowers it), so they are approximate (±0.2 s). PostgreSQL marks rows dead; the disk
space is reused after (auto)vacuum, which is not part of the measurement.

| Run | Wall | Margin wait | Work | Phases (before wait / after) | Versions | Ropes | Chunks | MiB | Versions/s | Ropes/s | Chunks/s | MiB/s |
| --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
${runLine("8. Collect, nothing else running", t.run)}
${rawLine}
${runLine(`9. Collect under the GET load (×${l.concurrency})`, l.run)}

The raw limit copies the tenant's rows into scratch tables \`LIKE … INCLUDING ALL\` (same keys and
indexes, no foreign keys; copy ${s(raw.copySeconds)}, not timed) and deletes them table by table,
1000 rows per autocommit statement.

Small GETs (row 9): plain HTTP GET of ${l.files} files of ${l.size / 1024} KiB on a virtual host, ${l.concurrency} in
flight (keep-alive), latency = request sent → whole body read, in ms. Idle: ${IDLE_TEXT}; during GC:
for as long as the row-9 Collect ran, GETs started during the margin wait left out (listed apart).

| GET load | GETs | GETs/s | p50 | p90 | p99 | max |
| --- | ---: | ---: | ---: | ---: | ---: | ---: |
${lat("idle (both periods)", l.idle)}
${lat("… idle before the collection", l.idleBefore)}
${lat("… idle after the collection", l.idleAfter)}
${lat("during GC (work phases)", l.underGc)}
${lat("… before the wait (versions, ropes, condemning)", l.beforeWait)}
${lat("… after the wait (sweeping)", l.afterWait)}
${lat("during the margin wait (no GC work)", l.duringWait)}

p99 during GC ÷ idle: ${(l.underGc.p99 / l.idle.p99).toFixed(2)}; p50: ${(l.underGc.p50 / l.idle.p50).toFixed(2)}.

The margin-wait line is a control, not idle: no collection statement runs then, but autovacuum of
the rows the run just deleted, and checkpoints, may.
`;
}

const IDLE_TEXT =
  "10 s of the load right before the collection and 10 s right after it, nothing else running";

/** "a s / b s" of a run's phases, or "—" when the sweep was not seen. */
function phases(r: TimedCollection): string {
  if (r.marginMs === 0 || r.sweepSeenAt === undefined) return "—";
  const before = (r.sweepSeenAt - r.marginMs - r.startedAt) / 1000;
  const after = (r.endedAt - r.sweepSeenAt) / 1000;
  return `${before.toFixed(1)} s / ${after.toFixed(1)} s`;
}
