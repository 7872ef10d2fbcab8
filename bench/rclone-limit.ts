/**
 * Peer row 1g: rclone uploading the same large file over HTTP to `rclone serve webdav` on
 * 127.0.0.1, which writes it to a directory on the same disk.
 *
 * rclone is the common tool for "copy files into a remote store"; a WebDAV server it serves itself
 * makes the whole path local and bounded: one `rclone copyto` (the client: reads the file, one
 * HTTP PUT) into one server process (writes the body to a file). It is the same shape as a cold
 * `curl -T` upload without what makes cacheroach a store: no chunking, no content hashing (the
 * WebDAV backend has no hash to check against), no database, and no fsync (rclone's local backend
 * leaves the bytes in the page cache), so it is an upper reference for an HTTP file upload, not a
 * bound. Timed: the `rclone copyto` process. Installed with apt-get when missing (as root);
 * without rclone on PATH (and it cannot be installed: not root) the row says how to install it.
 * The server is stopped by its PID; its directory is removed.
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Cleanup } from "./cleanup.js";
import { ensureTool, run } from "./exec.js";
import { freePort, type OptionalLimit } from "./nginx-limit.js";
import { MiB } from "./payload.js";

/** Times `rclone copyto` of `file` into a local `rclone serve webdav`. */
export async function rcloneRate(file: string, size: number, cleanup: Cleanup): Promise<OptionalLimit> {
  if (!(await ensureTool("rclone", "rclone", (line) => process.stderr.write(`${line}\n`))))
    return { skipped: "skipped: rclone not installed (as root: apt-get install -y rclone)" };
  const version = (await run("rclone", ["version"])).stdout.split("\n")[0]!.trim();
  const dir = await mkdtemp(join(tmpdir(), "cacheroach-bench-rclone-"));
  const removeDir = cleanup.add(`rclone directory ${dir}`, () => rm(dir, { recursive: true, force: true }));
  const served = join(dir, "served");
  await mkdir(served);
  const port = await freePort();
  // No config file: everything is on the command line (--config /dev/null keeps rclone from
  // reading or creating ~/.config/rclone).
  const server = spawn(
    "rclone",
    ["serve", "webdav", "--config", "/dev/null", "--addr", `127.0.0.1:${port}`, served],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let serverLog = "";
  server.stderr.on("data", (d: Buffer) => {
    serverLog = (serverLog + d.toString()).slice(-4000);
  });
  const stopServer = cleanup.add(`rclone serve ${server.pid}`, async () => {
    if (server.exitCode !== null || server.signalCode !== null) return;
    server.kill("SIGTERM");
    await new Promise((resolve) => server.once("exit", resolve));
  });
  try {
    const url = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      const r = await run("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", `${url}/`], {
        allowFailure: true,
        timeoutMs: 5_000,
      });
      if (r.stdout === "200") break;
      if (i >= 100) throw new Error(`rclone serve webdav did not answer within 10 s\n${serverLog}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const r = await run(
      "rclone",
      ["copyto", "--config", "/dev/null", "--webdav-url", url, file, ":webdav:/payload.bin"],
      { timeoutMs: 300_000 },
    );
    const stored = (await stat(join(served, "payload.bin"))).size;
    if (stored !== size) throw new Error(`rclone stored ${stored} bytes, expected ${size}`);
    return { mibps: size / MiB / r.seconds, detail: `${version}, copyto → serve webdav` };
  } finally {
    await stopServer();
    await removeDir();
  }
}
