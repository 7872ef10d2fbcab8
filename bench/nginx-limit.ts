/**
 * Limit row 1d: nginx serving the same large file over loopback to `curl -o /dev/null`.
 *
 * nginx is the usual answer to "serve files over HTTP fast": a C server that hands a page-cached
 * file to the kernel with sendfile(2). That is the ceiling for a hot download, where cacheroach
 * serves the same bytes from its in-memory chunk cache through the same loopback to the same curl.
 * The configuration is Debian's stock one where it matters (`sendfile on; tcp_nopush on;`), with
 * one worker (the machine has two cores and curl needs one), `access_log off`, listening on
 * 127.0.0.1 only, with its own prefix, pid file, logs and temp paths in a temp directory, and the
 * file hard-linked into its root. It is timed like cacheroach's curl downloads (wall time of the
 * curl process), twice, and the faster run counts. Installed with apt-get when missing (as root); without nginx
 * on PATH (and it cannot be installed: not root) the row says "skipped: nginx not installed". nginx is stopped by its master PID.
 */
import { chmod, copyFile, link, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Cleanup } from "./cleanup.js";
import { ensureTool, run } from "./exec.js";
import { MiB } from "./payload.js";

/** A limit that may be unavailable on this machine. */
export type OptionalLimit = { mibps: number; detail: string } | { skipped: string };

/** Serves `file` with nginx and times two curl downloads of it. */
export async function nginxRate(file: string, size: number, cleanup: Cleanup): Promise<OptionalLimit> {
  if (!(await ensureTool("nginx", "nginx", (line) => process.stderr.write(`${line}\n`))))
    return { skipped: "skipped: nginx not installed (as root: apt-get install -y nginx)" };
  const version = (await run("nginx", ["-v"], { allowFailure: true })).stderr
    .trim()
    .replace(/^nginx version: /, "");
  const dir = await mkdtemp(join(tmpdir(), "cacheroach-bench-nginx-"));
  const removeDir = cleanup.add(`nginx directory ${dir}`, () => rm(dir, { recursive: true, force: true }));
  // Workers may run as an unprivileged user (when we are root): let them reach the root directory.
  await chmod(dir, 0o755);
  const www = join(dir, "www");
  await mkdir(www, { mode: 0o755 });
  await chmod(www, 0o755);
  await link(file, join(www, "payload.bin")).catch(() => copyFile(file, join(www, "payload.bin")));
  await mkdir(join(dir, "temp"));
  const port = await freePort();
  const temp = (name: string) => `${name}_temp_path ${join(dir, "temp", name)};`;
  await writeFile(
    join(dir, "nginx.conf"),
    `worker_processes 1;
pid ${join(dir, "nginx.pid")};
error_log ${join(dir, "error.log")} warn;
events { worker_connections 64; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  default_type application/octet-stream;
  ${temp("client_body")} ${temp("proxy")} ${temp("fastcgi")} ${temp("uwsgi")} ${temp("scgi")}
  server {
    listen 127.0.0.1:${port};
    root ${www};
  }
}
`,
  );
  await run("nginx", ["-p", dir, "-e", join(dir, "error.log"), "-c", join(dir, "nginx.conf")], {
    timeoutMs: 30_000,
  });
  const pid = Number((await readFile(join(dir, "nginx.pid"), "utf8")).trim());
  const stop = cleanup.add(`nginx master ${pid}`, () => stopPid(pid));
  try {
    const url = `http://127.0.0.1:${port}/payload.bin`;
    await waitFor200(url);
    let bestRate = 0;
    for (let i = 0; i < 2; i++) {
      const r = await run("curl", ["-sS", "-f", "-o", "/dev/null", "-w", "%{size_download}", url], {
        timeoutMs: 300_000,
      });
      if (Number(r.stdout) !== size) throw new Error(`nginx served ${r.stdout} bytes, expected ${size}`);
      bestRate = Math.max(bestRate, size / MiB / r.seconds);
    }
    return { mibps: bestRate, detail: `${version}, best of 2` };
  } finally {
    await stop();
    await removeDir();
  }
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Polls `url` with curl until it answers 200 (at most 10 s). */
async function waitFor200(url: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const r = await run("curl", ["-s", "-o", "/dev/null", "-r", "0-0", "-w", "%{http_code}", url], {
      allowFailure: true,
      timeoutMs: 5_000,
    });
    if (r.stdout === "200" || r.stdout === "206") return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} did not answer within 10 s`);
}

/** SIGTERM to a process by PID, waiting (at most 10 s, then SIGKILL) until it is gone. */
async function stopPid(pid: number): Promise<void> {
  const alive = () => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  process.kill(pid, "SIGTERM");
  for (let i = 0; i < 100 && alive(); i++) await new Promise((resolve) => setTimeout(resolve, 100));
  if (alive()) process.kill(pid, "SIGKILL");
}
