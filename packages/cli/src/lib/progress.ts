/**
 * A byte-counting progress bar on stderr (cli-progress). Disabled, it does nothing; callers turn
 * it on only when stderr is a TTY (or the user asked with --progress).
 */
import cliProgress from "cli-progress";
import { formatBytes } from "./format.js";

/** Progress of a transfer of a known number of bytes. */
export interface Progress {
  /** Counts `n` more bytes done. */
  add(n: number): void;
  /** Changes the expected total (e.g. once a download's size is known). */
  addTotal(n: number): void;
  /** Sets the label (e.g. the current file). */
  label(text: string): void;
  /** Removes the bar; call before printing results. */
  stop(): void;
}

const NOOP: Progress = { add() {}, addTotal() {}, label() {}, stop() {} };

/** Should progress be shown by default? Only on an interactive stderr. */
export function progressDefault(): boolean {
  return Boolean(process.stderr.isTTY);
}

function shorten(s: string, max: number): string {
  return s.length <= max ? s : `…${s.slice(s.length - max + 1)}`;
}

/** Creates a progress bar for `total` bytes, or a no-op when disabled. */
export function createProgress(enabled: boolean, total: number, title: string): Progress {
  if (!enabled) return NOOP;
  const started = Date.now();
  let done = 0;
  let expected = total;
  let current = title;
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: "{title} [{bar}] {percentage}% | {done}/{size} | {rate} | ETA {eta_formatted}",
      hideCursor: true,
      barsize: 24,
      fps: 8,
      etaBuffer: 50,
      clearOnComplete: false,
    },
    cliProgress.Presets.shades_classic,
  );
  const payload = () => {
    const secs = (Date.now() - started) / 1000;
    return {
      title: shorten(current, 28),
      done: formatBytes(done),
      size: formatBytes(expected),
      rate: secs > 0 ? `${formatBytes(done / secs)}/s` : "-",
    };
  };
  bar.start(Math.max(expected, 1), 0, payload());
  return {
    add(n) {
      done += n;
      bar.update(done, payload());
    },
    addTotal(n) {
      expected += n;
      bar.setTotal(Math.max(expected, 1));
      bar.update(done, payload());
    },
    label(text) {
      current = text;
      bar.update(done, payload());
    },
    stop() {
      bar.update(done, payload());
      bar.stop();
    },
  };
}
