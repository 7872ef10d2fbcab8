/** How values read on screen. */
import type { Timestamp } from "@bufbuild/protobuf/wkt";

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** 1536 → "1.5 KiB". */
export function formatSize(n: bigint | number): string {
  let v = Number(n);
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 1 : 0)} ${UNITS[u]}`;
}

/** A timestamp as a local date and time. */
export function formatTime(t: Timestamp | Date | undefined): string {
  if (!t) return "";
  const d = t instanceof Date ? t : new Date(Number(t.seconds) * 1000 + t.nanos / 1e6);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** Bytes as lower-case hex. */
export function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
