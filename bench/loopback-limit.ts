/**
 * Limit row 1f: how fast two processes move bytes over a TCP connection on 127.0.0.1 — every
 * upload and download row crosses loopback at least once (client ↔ server), and the server's
 * database traffic a second time, so this is the memcpy-style ceiling of any row that moves the
 * large file. A child Node process serves the file's size (1 MiB writes of one reused buffer: no
 * disk, no hashing) to one connection; this process connects and reads it into one reused 1 MiB
 * buffer (`onread`: no allocation per read), discarding it. Timed from the connection to the
 * last byte, twice; the faster run counts.
 */
import { spawn } from "node:child_process";
import net from "node:net";
import { MiB } from "./payload.js";

/** The writer: listens on 127.0.0.1, prints its port, and writes argv[1] bytes in 1 MiB buffers to the first connection. */
const WRITER = `
const net = require("node:net");
const bytes = Number(process.argv[1]);
const buf = Buffer.alloc(1 << 20, 7);
const srv = net.createServer((s) => {
  srv.close();
  let left = bytes;
  const pump = () => {
    while (left > 0) {
      const n = Math.min(buf.length, left);
      left -= n;
      if (!s.write(n === buf.length ? buf : buf.subarray(0, n))) return s.once("drain", pump);
    }
    s.end();
  };
  s.on("error", (e) => { console.error(e.message); process.exit(1); });
  pump();
});
srv.listen(0, "127.0.0.1", () => console.log(srv.address().port));
`;

/** MiB/s of the faster of two 127.0.0.1 transfers of `bytes`. */
export async function loopbackRate(bytes: number): Promise<{ mibps: number; detail: string }> {
  let bestRate = 0;
  for (let i = 0; i < 2; i++) bestRate = Math.max(bestRate, await once(bytes));
  return { mibps: bestRate, detail: "Node socket pair, 1 MiB writes and reads, best of 2" };
}

/** One transfer: the child writes, this process reads into one reused 1 MiB buffer (no allocation per read). */
async function once(bytes: number): Promise<number> {
  const child = spawn(process.execPath, ["-e", WRITER, String(bytes)], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const exited = new Promise<void>((resolve, reject) =>
    child.once("exit", (code) =>
      code === 0 ? resolve() : reject(new Error(`loopback writer: exit ${code} ${stderr}`)),
    ),
  );
  const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.once("data", (d: Buffer) => resolve(Number(d.toString().trim())));
      exited.catch(reject);
    });
    const received = new Promise<number>((resolve, reject) => {
      let n = 0;
      let t0 = 0;
      const sock = net.connect({
        port,
        host: "127.0.0.1",
        onread: {
          buffer: Buffer.allocUnsafe(1 << 20),
          callback: (k: number) => {
            n += k;
            return true;
          },
        },
      });
      sock.once("connect", () => {
        t0 = performance.now();
      });
      sock.on("error", reject);
      sock.on("end", () => {
        const seconds = (performance.now() - t0) / 1000;
        if (n !== bytes) reject(new Error(`loopback: received ${n} bytes, expected ${bytes}`));
        else resolve(bytes / MiB / seconds);
      });
    });
    const [rate] = await Promise.all([received, exited]);
    return rate;
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null) child.kill("SIGKILL");
  }
}
