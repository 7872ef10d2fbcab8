import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { DATA_DIR_LOCK_FILE, DataDirInUseError, lockDataDir, startedOf } from "../src/data-dir-lock.js";

const moduleUrl = new URL("../src/data-dir-lock.ts", import.meta.url).href;

describe("lockDataDir", () => {
  const scratch = mkdtempSync(join(tmpdir(), "cacheroach-lock-test-"));
  let n = 0;
  const freshDir = () => join(scratch, `d${n++}`);
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it("creates the directory and a lock naming this process; a second lock is refused until released", async () => {
    const dir = freshDir();
    const lock = await lockDataDir(dir);
    const record = JSON.parse(readFileSync(join(dir, DATA_DIR_LOCK_FILE), "utf8"));
    assert.deepEqual(record, { pid: process.pid, started: await startedOf(process.pid) });
    await assert.rejects(lockDataDir(dir), (err: unknown) => {
      assert.ok(err instanceof DataDirInUseError);
      assert.equal(err.pid, process.pid);
      assert.match(err.message, new RegExp(`${dir} is in use .*PID ${process.pid}`));
      return true;
    });
    await lock.release();
    await lock.release();
    assert.ok(!existsSync(join(dir, DATA_DIR_LOCK_FILE)));
    await (await lockDataDir(dir)).release();
    assert.deepEqual(readdirSync(dir), [], "no temporary files left");
  });

  it("takes over a lock whose PID is dead, reused by another process, or damaged", async () => {
    const deadPid = spawnSync("true").pid!;
    for (const text of [
      JSON.stringify({ pid: deadPid, started: "x" }),
      JSON.stringify({ pid: process.pid, started: "an earlier process with this PID" }),
      "{ not json",
      "",
    ]) {
      const dir = freshDir();
      await lockDataDir(dir).then((l) => l.release()); // creates the directory
      writeFileSync(join(dir, DATA_DIR_LOCK_FILE), text);
      const lock = await lockDataDir(dir);
      assert.equal(JSON.parse(readFileSync(lock.file, "utf8")).pid, process.pid, text);
      await lock.release();
    }
  });

  it("lets exactly one of many lockers win a stale lock", async () => {
    const dir = freshDir();
    await lockDataDir(dir).then((l) => l.release());
    writeFileSync(join(dir, DATA_DIR_LOCK_FILE), JSON.stringify({ pid: spawnSync("true").pid, started: "" }));
    const results = await Promise.allSettled(Array.from({ length: 12 }, () => lockDataDir(dir)));
    const won = results.filter((r) => r.status === "fulfilled");
    assert.equal(won.length, 1);
    for (const r of results)
      if (r.status === "rejected") assert.ok(r.reason instanceof DataDirInUseError, String(r.reason));
    await (won[0] as PromiseFulfilledResult<Awaited<ReturnType<typeof lockDataDir>>>).value.release();
    assert.deepEqual(readdirSync(dir), []);
  });

  it("is refused while another process holds it, and taken over once that process is killed", async () => {
    const dir = freshDir();
    const script = join(scratch, "holder.mts");
    writeFileSync(
      script,
      `import { lockDataDir } from ${JSON.stringify(moduleUrl)};\n` +
        `await lockDataDir(${JSON.stringify(dir)});\nconsole.log("LOCKED");\nsetInterval(() => {}, 1000);\n`,
    );
    const holder = spawn(process.execPath, ["--import", "tsx", script], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((resolve, reject) => {
      holder.stdout.on("data", (d: Buffer) => {
        if (d.toString().includes("LOCKED")) resolve();
      });
      holder.once("exit", (code) => reject(new Error(`holder exited (${code})`)));
    });
    await assert.rejects(lockDataDir(dir), { name: "DataDirInUseError", pid: holder.pid });
    holder.kill("SIGKILL");
    await new Promise((resolve) => holder.once("exit", resolve));
    const lock = await lockDataDir(dir);
    assert.equal(JSON.parse(readFileSync(lock.file, "utf8")).pid, process.pid);
    await lock.release();
  });
});

describe("startedOf", () => {
  it("tells two processes with the same PID apart and is undefined for a dead one", async () => {
    const mine = await startedOf(process.pid);
    assert.ok(mine);
    assert.equal(await startedOf(process.pid), mine, "stable");
    assert.notEqual(await startedOf(process.ppid), mine);
    assert.equal(await startedOf(spawnSync("true").pid!), undefined);
  });
});
