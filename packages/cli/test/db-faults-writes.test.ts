/**
 * Database faults that refuse writes but keep serving reads: a read-only database
 * (both ways one happens) and a full disk. As in db-faults.test.ts, each test runs its own
 * PostgreSQL and server process under a bounded mixed load.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { open, rm, statfs, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import {
  auditWrites,
  canMountTmpfs,
  firstWriteAfter,
  type OpRecord,
  readyz,
  sleep,
  startRig,
  tally,
  waitForOps,
  waitReady,
} from "./fault-harness.js";
import { SCRATCHPAD, spawnCli, tempDir, writeCliConfig } from "./helpers.js";

function failures(ops: OpRecord[]): OpRecord[] {
  return ops.filter((o) => o.outcome !== "ok");
}

test("read-only database: writes get 503 naming it, reads go on, and writes resume at once after", async (t) => {
  const rig = await startRig("readonly", ["--max-connections", "8"]);
  try {
    // Writes take a few seconds to be refused (the server retries them on fresh sessions first), so
    // enough workers that reads keep flowing meanwhile.
    const load = rig.load("/fault/readonly", { workers: 6 });
    load.start();
    await sleep(1500);
    let back = 0;
    for (const how of ["database", "system"] as const) {
      await rig.pg.setReadOnly(true, how);
      // ALTER DATABASE reaches new sessions only: end the old ones, so the server's next sessions
      // start read-only (as after a failover to a standby) and stay so unless replaced.
      if (how === "database") await rig.pg.terminateServerSessions();
      const from = Date.now();
      // At least 6 s, and (on a loaded machine, where fewer requests finish) until a write was
      // refused, for at most 30 s.
      await sleep(6000);
      while (
        Date.now() - from < 30_000 &&
        !load.between(from + 500).some((o) => o.op === "put" && o.outcome === "http 503")
      )
        await sleep(250);
      const r = await readyz(rig.server.url);
      assert.equal(r.status, 503, `${how}: ${r.body}`);
      assert.match(r.body, /read-only/);
      const during = load.between(from + 500);
      const refused = during.filter((o) => o.op === "put" && o.outcome === "http 503");
      assert.ok(refused.length > 0, `${how}: no write was refused: ${JSON.stringify(tally(during))}`);
      for (const o of refused) {
        assert.match(o.message ?? "", /database is read-only/);
        assert.equal(o.retryAfter, "2");
        assert.equal(o.errorCode, "ERR_DATABASE_READ_ONLY");
      }
      assert.deepEqual(
        failures(during.filter((o) => o.op !== "put")),
        [],
        `${how}: reads failed while the database was read-only`,
      );

      await rig.pg.setReadOnly(false, how);
      back = Date.now();
      await waitReady(rig.server.url, 200, 3000);
      await waitForOps(load, back + 2500);
      // Sessions that began read-only were replaced at their first refusal: no write fails once
      // the retries in flight at the switch are over (without replacement: every write, for 30 s).
      t.diagnostic(`${how}: first write ${firstWriteAfter(load, back)} ms after the database was writable`);
      const after = load.between(back + 2500);
      assert.ok(after.filter((o) => o.op === "put").length >= 5, JSON.stringify(tally(after)));
      assert.deepEqual(failures(after), [], `${how}: writes still failed after the database was writable`);
    }
    await load.stop();
    assert.ok(rig.server.alive, rig.server.stderr);
    assert.deepEqual(
      failures(load.ops).filter((o) => o.outcome !== "http 503" && o.outcome !== "rpc unavailable"),
      [],
    );
    assert.deepEqual(await auditWrites(rig.server.url, rig.token, load), []);
  } finally {
    await rig.close();
  }
});

const mountable = canMountTmpfs();

test("database disk full: writes get 507 with Retry-After, reads go on, readiness says so, writes resume", {
  skip: mountable ? false : "needs a tmpfs mount (root with CAP_SYS_ADMIN) for a small tablespace",
}, async (t) => {
  const rig = await startRig("diskfull", ["--max-connections", "8"]);
  const mnt = join(rig.pg.dir, "small");
  const filler = join(mnt, "filler");
  let mounted = false;
  const { dir: work, cleanup } = await tempDir();
  try {
    // Chunk data lives in a tablespace on a 128 MiB tmpfs (more than the load writes in the seconds after space is freed); the WAL and everything else do not, so
    // the database stays up and refuses exactly the writes that need new space.
    execFileSync("mkdir", ["-p", mnt]);
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=128m", "tmpfs", mnt]);
    mounted = true;
    execFileSync("mkdir", ["-p", join(mnt, "ts")]);
    execFileSync("chown", ["postgres:postgres", join(mnt, "ts")]);
    await rig.pg.admin(async (c) => {
      await c.query(`CREATE TABLESPACE cr_small LOCATION '${join(mnt, "ts")}'`);
      await c.query("ALTER TABLE chunks SET TABLESPACE cr_small");
    });

    const load = rig.load("/fault/diskfull");
    load.start();
    await sleep(1500);
    await fillUp(filler);
    const from = Date.now();
    // At least 3 s, and (on a loaded machine, where fewer requests finish) until a write was
    // refused, for at most 30 s: readiness reports what a write has met.
    await sleep(3000);
    while (
      Date.now() - from < 30_000 &&
      !load.between(from).some((o) => o.op === "put" && o.outcome === "http 507")
    )
      await sleep(250);

    const r = await readyz(rig.server.url);
    assert.equal(r.status, 503, r.body);
    assert.match(r.body, /disk full/);
    const config = join(work, "cli.cfg");
    await writeCliConfig(config, rig.server.url, rig.token, null);
    await writeFile(join(work, "new.bin"), Buffer.alloc(5000, 7));
    const put = await spawnCli(
      ["file", "put", "/fault/cli/", join(work, "new.bin"), "-c", config, "-t", SCRATCHPAD],
      { env: { CACHEROACH_RETRY_SECONDS: "0" } },
    );
    assert.equal(put.code, 7, put.stderr);
    assert.match(put.stderr, /disk full/);

    const during = load.between(from);
    const refused = during.filter((o) => o.op === "put" && o.outcome === "http 507");
    assert.ok(refused.length > 0, `no write got 507: ${JSON.stringify(tally(during))}`);
    for (const o of refused) {
      assert.match(o.message ?? "", /database disk full/);
      assert.equal(o.retryAfter, "30");
      assert.equal(o.errorCode, "ERR_STORAGE_FULL");
    }
    assert.deepEqual(
      failures(during.filter((o) => o.op !== "put")),
      [],
      "reads failed while the disk was full",
    );

    await rm(filler);
    const back = Date.now();
    await waitForOps(load, back + 1000);
    await load.stop();
    t.diagnostic(`first write ${firstWriteAfter(load, back)} ms after space was freed`);
    const after = load.between(back + 1000);
    assert.ok(
      after.filter((o) => o.op === "put" && o.outcome === "ok").length >= 5,
      JSON.stringify(tally(after)),
    );
    assert.deepEqual(failures(after), [], "writes still failed after space was freed");
    await waitReady(rig.server.url, 200, 3000);
    assert.ok(rig.server.alive, rig.server.stderr);
    assert.deepEqual(
      failures(load.ops).filter((o) => !/^(http 507|http 503|rpc unavailable)$/.test(o.outcome)),
      [],
    );
    assert.deepEqual(await auditWrites(rig.server.url, rig.token, load), []);
  } finally {
    await rig.close(); // its directory stays while the tmpfs is mounted in it
    if (mounted) execFileSync("umount", ["-l", mnt]);
    await rm(rig.pg.dir, { recursive: true, force: true });
    await cleanup();
  }
});

/** Fills the filesystem holding `file` to the last block. */
async function fillUp(file: string): Promise<void> {
  const fh = await open(file, "w");
  try {
    const block = Buffer.alloc(1 << 20, 1);
    for (;;) {
      const st = await statfs(file);
      const free = st.bavail * st.bsize;
      if (free === 0) return;
      try {
        await fh.write(block, 0, Math.min(block.length, free));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOSPC") return;
        throw err;
      }
    }
  } finally {
    await fh.close();
  }
}
