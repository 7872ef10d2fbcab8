/**
 * Rows 2–4: the large file through cacheroach, by the real CLI and by real curl.
 *
 * 2. Cold upload: the file into a tenant that has none of its chunks (every byte is hashed, sent,
 *    and stored durably). The CLI (`file put`) goes to one tenant, `curl -T` (plain HTTP PUT on a
 *    virtual host, `Authorization: Bearer`) to another, so both are cold. A CHECKPOINT precedes each,
 *    as it precedes each raw ingest attempt. Compared with raw pg ingest (the database's own rate
 *    for the same rows) and with restic's first backup.
 * 3. Re-upload: the same file again into the same tenant (all chunks present; a new version is
 *    written: `file put --always`, since an unchanged put writes none by default). The CLI by default takes the unchanged file's chunk hashes from its hash cache
 *    (recorded by row 2's cold upload, which hashed the file) and sends only missing chunks (none);
 *    with `--no-hash-cache` it reads and hashes every byte first; with `--no-dedup` it streams
 *    every byte and the server hashes it and skips the stored chunks. All three, and curl, are
 *    shown; the target (≥ 1 GiB/s) applies to the CLI. Compared with single-thread BLAKE3.
 * 4. Download, from the CLI's tenant, cold (the first download after restarting the server process:
 *    its chunk cache is empty and every chunk comes from PostgreSQL; the OS page cache and
 *    PostgreSQL's shared buffers stay as they are) and hot (the second download in the same process:
 *    the cache, sized to hold the whole file, serves every chunk). The CLI writes to stdout
 *    (`-o -`, sent to /dev/null, still verifying the content hash) and curl uses `-o /dev/null`, so
 *    neither pays for a disk write. Cold is compared with the raw read, hot with nginx.
 *
 * All times are wall-clock times of the CLI or curl process, start-up included.
 */
import type { BenchDatabase } from "./database.js";
import { cli, run } from "./exec.js";
import { MiB } from "./payload.js";
import { readMemory } from "./rss.js";
import type { ServerProcess } from "./server-process.js";

/** The tenants, hosts and files rows 2–4 use. */
export interface LargeFileSetup {
  db: BenchDatabase;
  server: ServerProcess;
  config: string;
  token: string;
  file: string;
  size: number;
  cliTenant: string;
  /** Virtual host mapped to the CLI's tenant (curl downloads the CLI-uploaded file through it). */
  cliHost: string;
  curlTenant: string;
  /** Virtual host mapped to the curl upload tenant. */
  curlHost: string;
}

/** MiB/s of each measurement of rows 2–4. */
export interface LargeFileResults {
  coldUploadCli: number;
  coldUploadCurl: number;
  reuploadCli: number;
  reuploadCliRehash: number;
  reuploadCliStream: number;
  reuploadCurl: number;
  coldDownloadCli: number;
  hotDownloadCli: number;
  coldDownloadCurl: number;
  hotDownloadCurl: number;
  /** The step by the end of which the server's VmHWM had reached its highest value. */
  peakStep: string;
  /** The server's memory right after that step (VmRSS, V8 heap, Buffers). */
  peakMemory: string;
}

const REMOTE_DIR = "/big/";
const REMOTE = "/big/payload.bin";

/** Runs rows 2–4 in order (the caller watches the server's memory meanwhile). */
export async function largeFileRows(
  s: LargeFileSetup,
  log: (line: string) => void,
): Promise<LargeFileResults> {
  const rate = (seconds: number) => s.size / MiB / seconds;
  const checkpoint = async () => {
    const pool = s.db.pool(1);
    try {
      await s.db.checkpoint(pool);
    } finally {
      await pool.end();
    }
  };
  const cliPut = async (extra: string[]) => {
    const r = await cli(s.config, [
      "file",
      "put",
      REMOTE_DIR,
      s.file,
      "-t",
      s.cliTenant,
      "--no-progress",
      "--json",
      ...extra,
    ]);
    const out = JSON.parse(r.stdout) as { status: string; size: number }[];
    if (out.length !== 1 || out[0]?.status !== "ok" || out[0].size !== s.size) {
      throw new Error(`file put reported ${r.stdout.slice(0, 500)}`);
    }
    return rate(r.seconds);
  };
  const curlPut = async (expect: string) => {
    const r = await run("curl", [
      "-sS",
      "-o",
      "/dev/null",
      "-w",
      "%{http_code}",
      "-T",
      s.file,
      "-H",
      `Authorization: Bearer ${s.token}`,
      "-H",
      `Host: ${s.curlHost}`,
      `${s.server.url}${REMOTE}`,
    ]);
    if (r.stdout !== expect)
      throw new Error(`curl -T answered ${r.stdout}, expected ${expect}\n${s.server.recentStderr}`);
    return rate(r.seconds);
  };
  const cliGet = async () => {
    const r = await cli(s.config, ["file", "get", REMOTE, "-o", "-", "-t", s.cliTenant, "--no-progress"], {
      stdout: "ignore",
    });
    return rate(r.seconds);
  };
  const curlGet = async () => {
    const r = await run("curl", [
      "-sS",
      "-f",
      "-o",
      "/dev/null",
      "-w",
      "%{size_download}",
      "-H",
      `Authorization: Bearer ${s.token}`,
      "-H",
      `Host: ${s.cliHost}`,
      `${s.server.url}${REMOTE}`,
    ]);
    if (Number(r.stdout) !== s.size) throw new Error(`curl downloaded ${r.stdout} bytes, expected ${s.size}`);
    return rate(r.seconds);
  };
  let peakStep = "";
  let peakMemory = "";
  let peak = 0;
  const m = (n: number) => `${(n / MiB).toFixed(0)} MiB`;
  const step = async (name: string, f: () => Promise<number>) => {
    const v = await f();
    const mem = await readMemory(s.server.pid);
    const usage = await s.server.memoryUsage();
    const breakdown = usage
      ? `V8 heap ${m(usage.heapTotal)} (used ${m(usage.heapUsed)}), Buffers ${m(usage.arrayBuffers)}`
      : "no breakdown";
    if (mem && mem.hwm > peak) {
      peak = mem.hwm;
      peakStep = name;
      peakMemory = `right after it: VmRSS ${m(mem.rss)}, ${breakdown}`;
    }
    const rss = mem ? ` (server VmRSS ${m(mem.rss)}, VmHWM ${m(mem.hwm)}; ${breakdown})` : "";
    log(`  ${name}: ${v.toFixed(0)} MiB/s${rss}`);
    return v;
  };

  await checkpoint();
  const coldUploadCli = await step("2. cold upload, CLI", () => cliPut([]));
  await checkpoint();
  const coldUploadCurl = await step("2. cold upload, curl -T", () => curlPut("201"));
  // --always: an unchanged put writes no version by default (it compares with the remote head);
  // this row measures writing the new version.
  const reuploadCli = await step("3. re-upload, CLI", () => cliPut(["--always"]));
  const reuploadCliRehash = await step("3. re-upload, CLI --no-hash-cache", () =>
    cliPut(["--always", "--no-hash-cache"]),
  );
  const reuploadCliStream = await step("3. re-upload, CLI --no-dedup", () =>
    cliPut(["--always", "--no-dedup"]),
  );
  const reuploadCurl = await step("3. re-upload, curl -T", () => curlPut("204"));
  await s.server.restart();
  const coldDownloadCli = await step("4. cold download, CLI", cliGet);
  const hotDownloadCli = await step("4. hot download, CLI", cliGet);
  await s.server.restart();
  const coldDownloadCurl = await step("4. cold download, curl", curlGet);
  const hotDownloadCurl = await step("4. hot download, curl", curlGet);
  return {
    coldUploadCli,
    coldUploadCurl,
    reuploadCli,
    reuploadCliRehash,
    reuploadCliStream,
    reuploadCurl,
    coldDownloadCli,
    hotDownloadCli,
    coldDownloadCurl,
    hotDownloadCurl,
    peakStep,
    peakMemory,
  };
}
