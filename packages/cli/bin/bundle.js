/**
 * Whether the CLI's bundle (dist/bundle/cli.js, written by `npm run build` through
 * scripts/write-bundle.mjs) may be run: only when it and every file it was built from are exactly
 * as they were when it was built (same size and mtime, as recorded in dist/bundle/stamp.json).
 * Anything else (`tsc -b` without the bundle step, an edited dist/ file, another dependency
 * version, a missing or unreadable stamp) means bin/run.js runs dist/ instead. About 170 stats,
 * ~4 ms of CPU at start-up; paths are joined as strings (path.join's normalisation of the
 * "../../node_modules/…" paths, in code not yet optimised, cost twice the stats).
 */
import { readFileSync, statSync } from "node:fs";
import { join } from "node:path";

export const BUNDLE_DIR = "dist/bundle";
export const BUNDLE_FILE = `${BUNDLE_DIR}/cli.js`;
export const STAMP_FILE = `${BUNDLE_DIR}/stamp.json`;
/** Set to 0 to always run dist/ (troubleshooting; the tests run both). */
export const BUNDLE_ENV = "CACHEROACH_BUNDLE";

/** The stamp of `paths` (relative to `root`): each one's size and mtime. */
export function stampOf(root, paths) {
  return {
    files: paths.map((path) => {
      const s = statSync(join(root, path));
      return [path, s.size, s.mtimeMs];
    }),
  };
}

/** True when the bundle below `root` exists and nothing it was built from changed since. */
export function bundleIsFresh(root) {
  let stamp;
  try {
    stamp = JSON.parse(readFileSync(join(root, STAMP_FILE), "utf8"));
  } catch {
    return false;
  }
  if (!Array.isArray(stamp?.files) || stamp.files[0]?.[0] !== BUNDLE_FILE) return false;
  const options = { throwIfNoEntry: false };
  for (const [path, size, mtimeMs] of stamp.files) {
    const s = statSync(`${root}/${path}`, options);
    if (!s || s.size !== size || s.mtimeMs !== mtimeMs) return false;
  }
  return true;
}
