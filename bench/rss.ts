/**
 * Peak resident memory of the server process (row 7).
 *
 * Linux keeps two numbers in /proc/<pid>/status: VmRSS (resident now) and VmHWM (the high-water mark
 * of VmRSS since the process started, maintained by the kernel, so no spike between samples is
 * missed). The monitor samples both every 100 ms while it is enabled and once more just before the
 * watched process is stopped, and keeps the maximum over every server process of the measured rows
 * (the server is restarted for the cold downloads, so rows 2–4 span several processes).
 */
import { readFile } from "node:fs/promises";

/** Resident memory of one process, bytes. */
export interface MemorySample {
  rss: number;
  hwm: number;
}

/** Reads VmRSS and VmHWM of `pid`; undefined if the process is gone or /proc is unavailable. */
export async function readMemory(pid: number): Promise<MemorySample | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/status`, "utf8");
  } catch {
    return undefined;
  }
  const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? Number.NaN);
  const rss = kib("VmRSS") * 1024;
  const hwm = kib("VmHWM") * 1024;
  return Number.isFinite(rss) && Number.isFinite(hwm) ? { rss, hwm } : undefined;
}

/** Samples a process's memory while enabled and keeps the peak across processes. */
export class RssMonitor {
  private pid: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private enabled = false;
  /** Highest VmRSS sampled. */
  peakRss = 0;
  /** Highest VmHWM read (the kernel's own peak, catches spikes between samples). */
  peakHwm = 0;
  /** Number of samples taken. */
  samples = 0;

  /** Starts counting (rows 2–4). */
  enable(): void {
    this.enabled = true;
    this.arm();
  }

  /** Stops counting, after a final sample. */
  async disable(): Promise<void> {
    await this.sample();
    this.enabled = false;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Watches a new process (a started or restarted server). */
  watch(pid: number): void {
    this.pid = pid;
    this.arm();
  }

  /** Takes one sample now (call before the watched process stops). */
  async sample(): Promise<void> {
    if (!this.enabled || this.pid === undefined) return;
    const m = await readMemory(this.pid);
    if (!m) return;
    this.samples++;
    this.peakRss = Math.max(this.peakRss, m.rss);
    this.peakHwm = Math.max(this.peakHwm, m.hwm);
  }

  /** The peak: the larger of the sampled VmRSS and the kernel's VmHWM. */
  get peak(): number {
    return Math.max(this.peakRss, this.peakHwm);
  }

  private arm(): void {
    if (!this.enabled || this.timer) return;
    this.timer = setInterval(() => void this.sample(), 100);
    this.timer.unref();
  }
}
