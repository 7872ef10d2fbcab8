/**
 * What a killed `file get` leaves behind: the next get continues a partial download of
 * the same content, discards one that does not verify or no longer fits, and removes other
 * leftovers of dead processes; temp files of running processes are never touched.
 */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { readdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { CLI_BIN, errorText, tempDir, useCliServer } from "./helpers.js";

const MiB = 1 << 20;

/** The id of a process that has exited (so its temp files count as left behind). */
function deadPid(): number {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], {
    encoding: "utf8",
  });
  return Number(r.stdout);
}

/** The name a get of `name` with content hash `hashHex` gives its temp file in process `pid`. */
function tempName(name: string, pid: number, tag: string): string {
  return `.${name}.${pid}.${tag}.cacheroach-tmp`;
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

describe("leftovers of killed downloads", () => {
  const content = randomBytes(6 * MiB + 12_345);
  let tag: string;
  const srv = useCliServer({
    setup: async () => {
      await writeFile(join(srv.dir, "big.bin"), content);
      const put = await srv.cli("file", "put", "/left/", join(srv.dir, "big.bin"), "--json");
      assert.equal(put.code, 0, errorText(put));
      const [meta] = JSON.parse(put.stdout) as { contentHash: string }[];
      tag = meta!.contentHash.slice(0, 16);
    },
  });
  const cli = srv.cli;

  /** Runs `file get /left/big.bin <out>` verbosely; its log lines. */
  async function get(out: string): Promise<string> {
    const r = await cli("file", "get", "/left/big.bin", "-o", out, "-v");
    assert.equal(r.code, 0, `${errorText(r)}\n${r.stderr}`);
    assert.equal(sha(await readFile(out)), sha(content));
    return r.stderr;
  }

  test("a partial download of the same content is continued from where it stopped", async () => {
    const { dir: out, cleanup: done } = await tempDir();
    try {
      const partial = join(out, tempName("big.bin", deadPid(), tag));
      await writeFile(partial, content.subarray(0, 4 * MiB + 7));
      const log = await get(join(out, "big.bin"));
      assert.match(
        log,
        new RegExp(`continuing a partial download .*\\(${4 * MiB + 7} of ${content.length} bytes\\)`),
      );
      assert.match(log, new RegExp(`range bytes=${4 * MiB + 7}-`));
      assert.deepEqual(await readdir(out), ["big.bin"]);
    } finally {
      await done();
    }
  });

  test("a partial download that does not verify is discarded and the file downloaded again", async () => {
    const { dir: out, cleanup: done } = await tempDir();
    try {
      const damaged = Buffer.from(content.subarray(0, 3 * MiB));
      damaged.writeUInt8(damaged.readUInt8(MiB + 5) ^ 0xff, MiB + 5);
      await writeFile(join(out, tempName("big.bin", deadPid(), tag)), damaged);
      const log = await get(join(out, "big.bin"));
      assert.match(log, /continuing a partial download/);
      assert.match(log, /did not verify; downloading it again/);
      assert.deepEqual(await readdir(out), ["big.bin"]);
    } finally {
      await done();
    }
  });

  test("leftovers that cannot be continued are removed; a running process's temp file is kept", async () => {
    const { dir: out, cleanup: done } = await tempDir();
    try {
      const dead = deadPid();
      const names = {
        longer: tempName("big.bin", dead, tag), // longer than the file: not the same content
        otherContent: tempName("big.bin", dead, "0123456789abcdef"), // an older version's
        small: tempName("other.txt", dead, "u1a2b3c4d0"), // a small file's, written whole
        live: tempName("other.txt", process.pid, "u9f8e7d6c0"), // this process runs
      };
      await writeFile(join(out, names.longer), Buffer.concat([content, Buffer.alloc(10)]));
      await writeFile(join(out, names.otherContent), content.subarray(0, MiB));
      await writeFile(join(out, names.small), "x");
      await writeFile(join(out, names.live), "y");
      const log = await get(join(out, "big.bin"));
      assert.doesNotMatch(log, /continuing a partial download/);
      assert.deepEqual((await readdir(out)).sort(), [names.live, "big.bin"].sort());
    } finally {
      await done();
    }
  });

  test("a get killed with SIGKILL leaves nothing the next get does not clean up or continue", async () => {
    const { dir: out, cleanup: done } = await tempDir();
    try {
      const target = join(out, "big.bin");
      const child = spawn(
        process.execPath,
        [CLI_BIN, "file", "get", "/left/big.bin", "-o", target, "-c", srv.config],
        { stdio: "ignore" },
      );
      // Kill it as soon as its temp file exists (or when it is done, if it is faster than us).
      const t0 = Date.now();
      for (;;) {
        const temps = (await readdir(out)).filter((n) => n.endsWith(".cacheroach-tmp"));
        if (temps.length > 0 || child.exitCode !== null || Date.now() - t0 > 20_000) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      child.kill("SIGKILL");
      await new Promise((r) => child.once("close", r));
      await get(target);
      assert.deepEqual(await readdir(out), ["big.bin"]);
      assert.equal((await stat(target)).size, content.length);
    } finally {
      await done();
    }
  });
});
