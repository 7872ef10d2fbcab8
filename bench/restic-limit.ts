/**
 * Limit row 1e: restic's first backup of the same large file into a fresh local repository.
 *
 * restic is a mature content-addressed store of the same kind (chunking, SHA-256 addressing,
 * deduplication, encryption) whose first backup of a file is the same job as a cold upload: read the
 * bytes, cut and hash them, and store every new chunk durably. The target is simply to be faster.
 * It writes to plain files on the same disk (no database), so it is a peer, not a bound. The repo
 * lives in a temp directory (`restic init`, RESTIC_PASSWORD set), `--no-cache` keeps it from
 * touching ~/.cache, and only `restic backup` is timed. Installed with apt-get when missing (as root); without
 * restic on PATH (and it cannot be installed: not root) the row says "skipped: restic not installed".
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Cleanup } from "./cleanup.js";
import { ensureTool, run } from "./exec.js";
import type { OptionalLimit } from "./nginx-limit.js";
import { MiB } from "./payload.js";

/** Times `restic backup` of `file` into a fresh repository. */
export async function resticRate(file: string, size: number, cleanup: Cleanup): Promise<OptionalLimit> {
  if (!(await ensureTool("restic", "restic", (line) => process.stderr.write(`${line}\n`))))
    return { skipped: "skipped: restic not installed (as root: apt-get install -y restic)" };
  const dir = await mkdtemp(join(tmpdir(), "cacheroach-bench-restic-"));
  const removeDir = cleanup.add(`restic directory ${dir}`, () => rm(dir, { recursive: true, force: true }));
  try {
    const env = { RESTIC_PASSWORD: "cacheroach-bench", RESTIC_REPOSITORY: join(dir, "repo") };
    const version = (await run("restic", ["version"], { env })).stdout
      .trim()
      .split(" ")
      .slice(0, 2)
      .join(" ");
    await run("restic", ["init", "--no-cache"], { env, timeoutMs: 60_000 });
    const r = await run("restic", ["backup", "--no-cache", "--quiet", file], { env, timeoutMs: 600_000 });
    return { mibps: size / MiB / r.seconds, detail: `${version}, first backup` };
  } finally {
    await removeDir();
  }
}
