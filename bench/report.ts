/**
 * The result table: one line per (measurement, reference) pair with the measured value, the limit it
 * is compared with (measured in the same run), their ratio, the target and whether it is met; plus
 * the machine description. Rendered as aligned plain text for the terminal and as Markdown for
 * docs/benchmarks.md.
 */
import { readFile } from "node:fs/promises";
import os from "node:os";
import { run } from "./exec.js";

/** One line of the table (all cells already formatted). */
export interface TableRow {
  row: string;
  measured: string;
  limit: string;
  ratio: string;
  target: string;
  met: string;
}

/** A reference value, or why there is none on this machine. */
export type Reference = { name: string; value: number } | { skipped: string };

const dash = "—";

/** Formats a rate or size with a unit. */
export function fmt(value: number, unit: string): string {
  const digits = value >= 100 ? 0 : value >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${unit}`;
}

/** A limit row: a measured reference with no target of its own. */
export function limitRow(
  row: string,
  value: number | { skipped: string },
  unit: string,
  detail: string,
): TableRow {
  if (typeof value !== "number")
    return { row, measured: value.skipped, limit: dash, ratio: dash, target: dash, met: dash };
  return { row, measured: fmt(value, unit), limit: detail, ratio: dash, target: dash, met: dash };
}

/** measured / reference must be ≥ `min` (or, with `strict`, > `min`). */
export function ratioRow(
  row: string,
  value: number,
  unit: string,
  ref: Reference,
  min: number | undefined,
  strict = false,
): TableRow {
  const measured = fmt(value, unit);
  if ("skipped" in ref) {
    return {
      row,
      measured,
      limit: ref.skipped,
      ratio: dash,
      target: min === undefined ? dash : targetText(min, strict),
      met: "n/a",
    };
  }
  const ratio = value / ref.value;
  return {
    row,
    measured,
    limit: `${ref.name} ${fmt(ref.value, unit)}`,
    ratio: ratio.toFixed(2),
    target: min === undefined ? "(info)" : targetText(min, strict),
    met: min === undefined ? dash : (strict ? ratio > min : ratio >= min) ? "yes" : "NO",
  };
}

/** An absolute target (value ≥ min), with a reference shown for context. */
export function absoluteRow(row: string, value: number, unit: string, ref: Reference, min: number): TableRow {
  const r = ratioRow(row, value, unit, ref, undefined);
  return { ...r, target: `≥ ${fmt(min, unit)}`, met: value >= min ? "yes" : "NO" };
}

/** value ≤ limit. */
export function ceilingRow(
  row: string,
  value: number,
  unit: string,
  limitName: string,
  limit: number,
): TableRow {
  const ratio = value / limit;
  return {
    row,
    measured: fmt(value, unit),
    limit: `${limitName} ${fmt(limit, unit)}`,
    ratio: ratio.toFixed(2),
    target: "≤ 1.00",
    met: ratio <= 1 ? "yes" : "NO",
  };
}

function targetText(min: number, strict: boolean): string {
  return strict ? `> ${min.toFixed(2)}` : `≥ ${min.toFixed(2)}`;
}

const HEADERS: TableRow = {
  row: "Row",
  measured: "Measured",
  limit: "Limit (same run)",
  ratio: "Ratio",
  target: "Target",
  met: "Met?",
};
const KEYS = Object.keys(HEADERS) as (keyof TableRow)[];

/** Aligned plain-text table. */
export function textTable(rows: TableRow[]): string {
  const all = [HEADERS, ...rows];
  const width = (k: keyof TableRow) => Math.max(...all.map((r) => [...r[k]].length));
  const widths = KEYS.map(width);
  const line = (r: TableRow) =>
    KEYS.map((k, i) => {
      const cell = r[k];
      const pad = " ".repeat(widths[i]! - [...cell].length);
      return k === "measured" || k === "ratio" ? pad + cell : cell + pad;
    })
      .join("  ")
      .trimEnd();
  const rule = widths.map((w) => "-".repeat(w)).join("  ");
  return [line(HEADERS), rule, ...rows.map(line)].join("\n");
}

/** Markdown pipe table. */
export function markdownTable(rows: TableRow[]): string {
  const esc = (s: string) => s.replaceAll("|", "\\|");
  const line = (r: TableRow) => `| ${KEYS.map((k) => esc(r[k])).join(" | ")} |`;
  const align = `| ${KEYS.map((k) => (k === "measured" || k === "ratio" ? "---:" : "---")).join(" | ")} |`;
  return [line(HEADERS), align, ...rows.map(line)].join("\n");
}

/** What the run ran on. */
export interface Machine {
  cpus: number;
  cpuModel: string;
  ramGiB: number;
  os: string;
  node: string;
  postgres: string;
  tools: string;
  /** 1-minute load average at the start and at the end of the run (other work on the machine). */
  load: string;
}

/** Describes this machine (cores, CPU, RAM, OS, Node, PostgreSQL, curl/nginx/restic). */
export async function describeMachine(postgresVersion: string, loadAtStart: number): Promise<Machine> {
  const cpuinfo = await readFile("/proc/cpuinfo", "utf8").catch(() => "");
  const cpuModel = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? "unknown";
  const osRelease = await readFile("/etc/os-release", "utf8").catch(() => "");
  const pretty = /^PRETTY_NAME="?([^"\n]+)"?/m.exec(osRelease)?.[1] ?? os.type();
  const version = async (cmd: string, args: string[], pick: (out: string) => string) => {
    const r = await run(cmd, args, { allowFailure: true, timeoutMs: 10_000 }).catch(() => undefined);
    return r && r.code === 0 ? pick(`${r.stdout}\n${r.stderr}`.trim()) : `${cmd}: not installed`;
  };
  const tools = [
    await version("curl", ["--version"], (o) => o.split("\n")[0]!.split(" ").slice(0, 2).join(" ")),
    await version("nginx", ["-v"], (o) => o.replace(/^nginx version: /, "").split("\n")[0]!),
    await version("restic", ["version"], (o) => o.split(" ").slice(0, 2).join(" ")),
  ].join(", ");
  return {
    cpus: os.availableParallelism(),
    cpuModel,
    ramGiB: os.totalmem() / 2 ** 30,
    os: `${pretty}, Linux ${os.release()}`,
    node: process.version,
    postgres: postgresVersion,
    tools,
    load: `${loadAtStart.toFixed(2)} at start, ${os.loadavg()[0]!.toFixed(2)} at end`,
  };
}
