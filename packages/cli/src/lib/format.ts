/** Output helpers: plain-text tables, byte sizes, durations. */
import { UserError } from "./errors.js";

/** A column of a table. */
export interface Column<T> {
  header: string;
  get(row: T): string;
  /** Right-align (numbers). */
  right?: boolean;
}

/** Renders rows as an aligned plain-text table with a header line (no trailing spaces). */
export function table<T>(rows: readonly T[], columns: readonly Column<T>[]): string {
  const cells = rows.map((r) => columns.map((c) => c.get(r)));
  const widths = columns.map((c, i) =>
    Math.max(c.header.length, ...cells.map((row) => (row[i] ?? "").length)),
  );
  const line = (vals: readonly string[]) =>
    vals
      .map((v, i) => {
        const w = widths[i] ?? 0;
        return columns[i]?.right ? v.padStart(w) : v.padEnd(w);
      })
      .join("  ")
      .trimEnd();
  return [line(columns.map((c) => c.header)), ...cells.map((row) => line(row))].join("\n");
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** `n` and the noun, singular for 1: "1 file", "3 files" (`many` when the plural is not noun + "s"). */
export function plural(n: number, noun: string, many = `${noun}s`): string {
  return `${n} ${n === 1 ? noun : many}`;
}

/** Human-readable binary size: "0 B", "512 KiB", "1.5 GiB". */
export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  const digits = u === 0 || v >= 100 || Number.isInteger(v) ? 0 : 1;
  return `${v.toFixed(digits)} ${UNITS[u]}`;
}

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 7 * 86_400_000,
  y: 365 * 86_400_000,
};

/** Parses "365d", "24h", "1h30m", "90s", "500ms" into milliseconds. */
export function parseDuration(text: string): number {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)/gy;
  let total = 0;
  let pos = 0;
  const s = text.trim();
  for (let m = re.exec(s); m !== null; m = re.exec(s)) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] ?? ""] ?? 0);
    pos = re.lastIndex;
  }
  if (s === "" || pos !== s.length || total <= 0) {
    throw new UserError(`invalid duration "${text}"`, undefined, [
      "use a number and unit, e.g. 365d, 24h, 1h30m",
    ]);
  }
  return total;
}

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1000 ** 4,
  tib: 1024 ** 4,
};

/** Parses "200MiB", "1.5GiB", "64k", "1000" (bytes) into bytes, as the server's size settings do. */
export function parseSize(text: string, what = "size"): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? SIZE_UNITS[(m[2] as string).toLowerCase()] : undefined;
  const n = m && unit !== undefined ? Math.round(Number(m[1]) * unit) : Number.NaN;
  if (!Number.isSafeInteger(n)) {
    throw new UserError(`invalid ${what} "${text}"`, undefined, [
      "use a number and unit, e.g. 200MiB, 1GiB, 0",
    ]);
  }
  return n;
}

/** ISO-8601 in UTC without milliseconds, or "" for undefined. */
export function formatTime(d: Date | undefined): string {
  return d ? d.toISOString().replace(/\.\d{3}Z$/, "Z") : "";
}

/** Seconds in the largest unit that divides them: 2592000 → "30d", 5400 → "90m", 0 → "0s". */
export function formatSeconds(s: number): string {
  for (const [unit, size] of [
    ["d", 86_400],
    ["h", 3600],
    ["m", 60],
  ] as const)
    if (s >= size && s % size === 0) return `${s / size}${unit}`;
  return `${s}s`;
}

/** Local time to the second, as `ls -l` shows it: "2026-11-02 14:03:59"; "" for undefined. */
export function formatLocalTime(d: Date | undefined): string {
  if (!d) return "";
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}
