/**
 * Limit row 1f: how fast two processes move bytes over a TCP connection on 127.0.0.1 — every
 * upload and download row crosses loopback at least once (client ↔ server), and the server's
 * database traffic a second time, so this is the memcpy-style ceiling of any row that moves the
 * large file. A child Node process writes the file's size (1 MiB buffers, one reused buffer:
 * no disk, no hashing) into a socket; this process reads and discards it. Timed from the
 * connection to the last byte, twice; the faster run counts.
 */
import { spawn } from "node:child_process";
import net from "node:net";
import { MiB } from "./payload.js";

/** The writer: connects to argv[1]:argv[2] and writes argv[3] bytes in 1 MiB buffers. */
const WRITER = `
const net = require("node:net");
const [port, bytes] = [Number(process.argv[1]), Number(process.argv[2])];
const buf = Buffer.alloc(1 << 20, 7);
const s = net.connect(port, "127.0.0.1", () => {
  let left = bytes;
  const pump = () => {
    while (left > 0) {
      const n = Math.min(buf.length, left);
      left -= n;
      if (!s.write(n === buf.length ? buf : buf.subarray(0, n))) return s.once("drain", pump);
    }
    s.end();
  };
  pump();
});
s.on("error", (e) => { console.error(e.message); process.exit(1); });
`;

/** MiB/s of the faster of two 127.0.0.1 transfers of `bytes`. */
export async function loopbackRate(bytes: number): Promise<{ mibps: number; detail: string }> {
  let bestRate = 0;
  for (let i = 0; i < 2; i++) bestRate = Math.max(bestRate, await once(bytes));
  return { mibps: bestRate, detail: "Node socket pair, 1 MiB writes, best of 2" };
}

async function once(bytes: number): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", resolve);
  });
  const { port } = server.address() as net.AddressInfo;
  const received = new Promise<number>((resolve, reject) => {
    server.once("connection", (sock) => {
      const t0 = performance.now();
      let n = 0;
      sock.on("data", (d: Buffer) => {
        n += d.length;
      });
      sock.on("error", reject);
      sock.on("end", () => {
        const seconds = (performance.now() - t0) / 1000;
        if (n !== bytes) reject(new Error(`loopback: received ${n} bytes, expected ${bytes}`));
        else resolve(bytes / MiB / seconds);
      });
    });
  });
  const child = spawn(process.execPath, ["-e", WRITER, String(port), String(bytes)], {
    stdio: ["ignore", "ignore", "pipe"],
  });
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
    const [rate] = await Promise.all([received, exited]);
    return rate;
  } finally {
    clearTimeout(timer);
    if (child.exitCode === null) child.kill("SIGKILL");
    server.close();
  }
}
