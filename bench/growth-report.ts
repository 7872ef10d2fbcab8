/**
 * Rows 10–12 in the result table, and the "Growth" section of docs/benchmarks.md: one table per
 * growth row (n → latency or rate, and the factor per ×10 of n) with a sentence on the shape of
 * the curve. bench/growth.ts says how each is measured.
 */
import { type GrowthLevel, type GrowthResults, WALK_CAP_MS } from "./growth.js";
import { fmt, ratioRow, type TableRow } from "./report.js";

/** The heading of the growth section. */
export const GROWTH_HEADING = "## Growth (rows 10–12)";

/** n as 10^k when it is a power of ten, else the number. */
export function nText(n: number): string {
  const k = Math.log10(n);
  return Number.isInteger(k) && k >= 3 ? `10^${k}` : String(n);
}

/** Rows 10–12 of the main table: the largest level against the smallest (ratio = growth over ×100). */
export function growthRows(
  g: GrowthResults,
  rawIngest: { name: string; value: number },
  row6?: { count: number; rpc: number },
): TableRow[] {
  const first = g.levels[0]!;
  const last = g.levels[g.levels.length - 1]!;
  const at = (l: GrowthLevel) => `at ${nText(l.n)}`;
  const big = nText(last.n);
  const lat = (row: string, pick: (l: GrowthLevel) => number) =>
    ratioRow(row, pick(last), "ms", { name: at(first), value: pick(first) }, undefined);
  return [
    lat(`10. FindMissing 256 (½ stored) p50, ${big} chunks`, (l) => l.findMissing.p50),
    lat(`10. FindMissing 256 (½ stored) p99, ${big} chunks`, (l) => l.findMissing.p99),
    lat(`10. GET 4 KiB (uncached) p50, ${big} chunks`, (l) => l.get.p50),
    lat(`10. GET 4 KiB (uncached) p99, ${big} chunks`, (l) => l.get.p99),
    lat(`11. list first page (1000) p50, dir of ${big}`, (l) => l.firstPage.p50),
    ratioRow(
      `11. list ${big}, Files.List walk`,
      last.walkRpc,
      "files/s",
      { name: "raw paged SELECT", value: last.walkRaw },
      undefined,
    ),
    ...(row6
      ? [
          ratioRow(
            `11. list ${big}, Files.List walk`,
            last.walkRpc,
            "files/s",
            { name: `row 6 (${row6.count})`, value: row6.rpc },
            undefined,
          ),
        ]
      : []),
    ...g.uploads.map((u) =>
      ratioRow(
        `12. cold upload ${g.knobs.uploadMiB} MiB, ${u.uploaders} × curl -T`,
        u.mibps,
        "MiB/s",
        rawIngest,
        undefined,
      ),
    ),
  ];
}

/** Notes under the main table. */
export function growthNotes(g: GrowthResults): string[] {
  return [
    `Rows 10–11: "Limit" is the same measurement in the same tenant at ${nText(g.levels[0]!.n)} files, so the ratio is the growth over ×${g.levels[g.levels.length - 1]!.n / g.levels[0]!.n}; the curves are in the "Growth" section. Rows 10–12 ran in a fresh database with a fresh server process; they took ${g.seconds.toFixed(0)} s in all.`,
  ];
}

/**
 * How a latency (or time per item) grows with n, from its factors per ×10 of n: flat (within this
 * machine's noise), log n-like (well below the ×10 of a cost linear in n: deeper indexes, fewer
 * cache hits), or a cost with a large part proportional to n.
 */
export function curveShape(values: number[]): string {
  const factors = values.slice(1).map((v, i) => v / values[i]!);
  const worst = Math.max(...factors);
  const list = factors.map((f) => `×${f.toFixed(2)}`).join(", ");
  if (worst <= 1.3) return `flat (${list} per ×10 of n, within this machine's noise)`;
  if (worst < 4)
    return `log n-like (${list} per ×10 of n, far below the ×10 of a cost linear in n: deeper indexes, fewer cache hits)`;
  return `growing with n (${list} per ×10 of n; linear would be ×10): part of the cost is proportional to n`;
}

const perTen = (values: number[], i: number, higherIsWorse = true) =>
  i === 0
    ? "—"
    : `×${(higherIsWorse ? values[i]! / values[i - 1]! : values[i - 1]! / values[i]!).toFixed(2)}`;

/** The growth section (Markdown). */
export function growthSection(g: GrowthResults, rawIngest: { name: string; value: number }): string {
  const L = g.levels;
  const ms = (v: number) => fmt(v, "ms");
  const latencyTable = (pick: (l: GrowthLevel) => { p50: number; p99: number; count: number }) => {
    const p50 = L.map((l) => pick(l).p50);
    const p99 = L.map((l) => pick(l).p99);
    const lines = L.map(
      (l, i) =>
        `| ${nText(l.n)} | ${pick(l).count} | ${ms(p50[i]!)} | ${ms(p99[i]!)} | ${perTen(p50, i)} | ${perTen(p99, i)} |`,
    );
    return {
      table: [
        "| Files (chunks) in the tenant | Calls | p50 | p99 | p50 growth per ×10 | p99 growth per ×10 |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        ...lines,
      ].join("\n"),
      shape: `The p50 is ${curveShape(p50)}. The p99 (set by the few slowest calls, noisy on a shared machine) is ${curveShape(p99)}.`,
    };
  };
  const fm = latencyTable((l) => l.findMissing);
  const get = latencyTable((l) => l.get);
  const fp = latencyTable((l) => l.firstPage);
  const perFile = L.map((l) => 1 / l.walkRpc);
  const walkLines = L.map(
    (l, i) =>
      `| ${nText(l.n)} | ${l.walkSeconds.toFixed(1)} s${l.walked < l.n ? ` (cut after ${l.walked} files)` : ""} | ${fmt(l.walkRpc, "files/s")} | ${perTen(perFile, i)} | ${fmt(l.walkRaw, "files/s")}${l.rawWalked < l.n ? ` (cut after ${l.rawWalked})` : ""} | ${(l.walkRpc / l.walkRaw).toFixed(2)} |`,
  );
  const steps = L.map(
    (l, i) =>
      `${i === 0 ? "" : "+"}${i === 0 ? l.n : l.n - L[i - 1]!.n} files in ${l.populateSeconds.toFixed(1)} s (ANALYZE ${l.analyzeSeconds.toFixed(1)} s)`,
  ).join("; ");
  const up = g.uploads;
  const upLines = up.map(
    (u) =>
      `| ${u.uploaders} | ${u.uploaders} × ${u.fileMiB.toFixed(0)} MiB | ${u.seconds.toFixed(1)} s | ${fmt(u.mibps, "MiB/s")} | ${(u.mibps / up[0]!.mibps).toFixed(2)} | ${(u.mibps / rawIngest.value).toFixed(2)} |`,
  );
  return `${GROWTH_HEADING}

One tenant grown with SQL to ${L.map((l) => nText(l.n)).join(", ")} files — each its own chunk, rope,
version and head row, all in one directory \`/g\` — and measured after each step (\`bench/growth.ts\`).
Population steps (one \`INSERT … SELECT … generate_series\` per table): ${steps}${
    L.some((l) => !l.fkChecked)
      ? " — with `session_replication_role = replica`, so the per-row foreign-key triggers did not run (the rows satisfy them by construction; keys, indexes and checks were enforced), by two transactions at once (chunks and their rope lists; ropes, versions and heads)"
      : ", in one transaction, foreign keys checked"
  }. Every call is sequential (one in flight), after untimed warm-up calls.

**Row 10a. \`Uploads.FindMissing\` of 256 hashes** (128 of stored chunks picked at random, 128 random):
the dedup question every upload asks.

${fm.table}

${fm.shape}

**Row 10b. GET of a 4 KiB file** (plain HTTP on a virtual host; each GET a file never read before,
so its chunk comes from the database, not the server's cache).

${get.table}

${get.shape}

**Row 11a. First page of \`Files.List\`** (page_size 1000) of the directory holding all n files.

${fp.table}

${fp.shape}

**Row 11b. Walking the whole directory** with \`Files.List\` (page_size 1000, following next_cursor),
once, right after one walk by the raw keyset-paged SELECT of row 6 (which also warms the cache);
a walk stops after ${WALK_CAP_MS / 1000} s (then its rate is over the files it saw).

| Files in the directory | Walk time | Files.List | Time per file, growth per ×10 | Raw paged SELECT | Ratio |
| ---: | ---: | ---: | ---: | ---: | ---: |
${walkLines.join("\n")}

The time per file is ${curveShape(perFile)}.

**Row 12. Cold uploads, concurrent**: ${g.knobs.uploadMiB} MiB of random bytes in all per level, by 1, 4 and 16
\`curl -T\` processes at once (one file each), each level into a fresh tenant; aggregate rate = all
bytes ÷ time from the first start to the last finish.

| Uploaders | Files | Wall time | Aggregate | ÷ 1 uploader | ÷ ${rawIngest.name} ${fmt(rawIngest.value, "MiB/s")} |
| ---: | --- | ---: | ---: | ---: | ---: |
${upLines.join("\n")}
`;
}
