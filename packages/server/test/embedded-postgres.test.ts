import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { type EmbeddedPostgres, startEmbeddedPostgres, textWatch } from "../src/db/embedded-postgres.js";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const moduleUrl = new URL("../src/db/embedded-postgres.ts", import.meta.url).href;

/** Runs one query on a fresh connection and returns the first row. */
async function queryOne(url: string, sql: string): Promise<Record<string, unknown>> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return (await client.query(sql)).rows[0] as Record<string, unknown>;
  } finally {
    await client.end();
  }
}

/** The postmaster PID recorded in the cluster's postmaster.pid. */
function postmasterPid(dir: string): number {
  return Number.parseInt(readFileSync(join(dir, "postmaster.pid"), "utf8").split("\n")[0] ?? "", 10);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("textWatch", () => {
  const needle = "database system is ready to accept connections";
  it("finds the needle inside a long piece, split across pieces, and only once it is complete", () => {
    const long = textWatch(needle);
    assert.equal(long(`LOG:  redo done\nLOG:  ${needle}\n${"LOG:  more after it\n".repeat(20)}`), true);
    const split = textWatch(needle);
    assert.equal(split("x".repeat(500)), false);
    assert.equal(split(`LOG:  database system is re`), false);
    assert.equal(split(`ady to accept connections\nLOG:  more`), true);
    assert.equal(split("anything"), true, "stays found");
    const never = textWatch(needle);
    for (const piece of ["database system is ready", " to shut down\n", "LOG:  accept connections"])
      assert.equal(never(piece), false);
  });
});

describe("startEmbeddedPostgres", () => {
  // Not mkdtemp: its 0700 directory is not reachable by the postgres OS user when we run as root.
  const scratch = join(tmpdir(), `cacheroach-embedded-pg-test-${process.pid}`);
  const dir = join(scratch, "pg");
  const running: EmbeddedPostgres[] = [];
  const start = async (): Promise<EmbeddedPostgres> => {
    const db = await startEmbeddedPostgres({ dir });
    running.push(db);
    return db;
  };

  before(() => {
    rmSync(scratch, { recursive: true, force: true });
  });

  after(async () => {
    await Promise.all(running.map((db) => db.stop()));
    rmSync(scratch, { recursive: true, force: true });
  });

  let firstUrl = "";

  it("initialises a fresh cluster: C collation, UTF8, 127.0.0.1 only, password file 0600", async () => {
    const lines: string[] = [];
    const db = await startEmbeddedPostgres({ dir, onLog: (line) => lines.push(line) });
    running.push(db);
    firstUrl = db.url;
    const url = new URL(db.url);
    assert.equal(url.protocol, "postgres:");
    assert.equal(url.hostname, "127.0.0.1");
    assert.equal(url.pathname, "/postgres");
    assert.ok(Number(url.port) > 0);

    const row = await queryOne(
      db.url,
      `SELECT datcollate, datctype, current_setting('server_encoding') AS enc,
              current_setting('listen_addresses') AS listen,
              current_setting('unix_socket_directories') AS sockets,
              'a' < 'B' AS a_before_b, version() AS version
         FROM pg_database WHERE datname = current_database()`,
    );
    // `SHOW lc_collate` no longer exists (removed in PostgreSQL 16); the database's collation is the fact.
    assert.equal(row["datcollate"], "C");
    assert.equal(row["datctype"], "C");
    assert.equal(row["enc"], "UTF8");
    assert.equal(row["listen"], "127.0.0.1");
    assert.equal(row["sockets"], "");
    assert.equal(row["a_before_b"], false, "C collation orders bytewise: 'B' (0x42) < 'a' (0x61)");
    assert.match(String(row["version"]), /^PostgreSQL 18\./);

    assert.equal(statSync(`${dir}.password`).mode & 0o777, 0o600);
    assert.equal(readFileSync(`${dir}.password`, "utf8").trim(), decodeURIComponent(url.password));
    assert.ok(lines.some((l) => l.includes("ready to accept connections")));
    assert.ok(lines.every((l) => !l.includes("\n")));

    await queryOne(db.url, "CREATE TABLE survivor (v text)");
    await queryOne(db.url, "INSERT INTO survivor VALUES ('still here')");
    await db.stop();
    await db.stop(); // idempotent
    await assert.rejects(queryOne(db.url, "SELECT 1"));
  });

  it("restarts on the same directory with the data and password kept", async () => {
    const db = await start();
    assert.equal(new URL(db.url).password, new URL(firstUrl).password);
    assert.deepEqual(await queryOne(db.url, "SELECT v FROM survivor"), { v: "still here" });
    await db.stop();
  });

  it("removes a stale postmaster.pid whose PID is dead", async () => {
    const deadPid = spawnSync("true").pid;
    assert.ok(deadPid && !isAlive(deadPid));
    writeFileSync(join(dir, "postmaster.pid"), `${deadPid}\n${dir}\n0\n5432\n\n\n`);
    const db = await start();
    assert.deepEqual(await queryOne(db.url, "SELECT v FROM survivor"), { v: "still here" });
    await db.stop();
  });

  /** Starts a process that owns the cluster in `dir`; resolves once it runs. */
  const startOwner = async () => {
    const script = join(scratch, "owner.mts");
    writeFileSync(
      script,
      `import { startEmbeddedPostgres } from ${JSON.stringify(moduleUrl)};\n` +
        `const db = await startEmbeddedPostgres({ dir: ${JSON.stringify(dir)} });\n` +
        `console.log("READY " + new URL(db.url).port);\nsetInterval(() => {}, 1000);\n`,
    );
    const owner = spawn(process.execPath, ["--import", "tsx", script], {
      cwd: repoRoot,
      stdio: ["ignore", "pipe", "inherit"],
    });
    const ready = await new Promise<string>((resolve, reject) => {
      let out = "";
      owner.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        if (out.includes("READY")) resolve(out);
      });
      owner.once("exit", (code) => reject(new Error(`owner exited early (${code}): ${out}`)));
    });
    assert.match(ready, /READY \d+/);
    const kill9 = async () => {
      owner.kill("SIGKILL");
      await new Promise((resolve) => owner.once("exit", resolve));
    };
    return { pid: owner.pid!, kill9 };
  };

  it("runs postgres outside the owner's process group, so a terminal's Ctrl-C does not reach it", async () => {
    const db = await start();
    const pgid = (pid: number) =>
      spawnSync("ps", ["-o", "pgid=", "-p", String(pid)])
        .stdout.toString()
        .trim();
    assert.notEqual(pgid(postmasterPid(dir)), pgid(process.pid));
    process.kill(-postmasterPid(dir), 0); // a group of its own, led by the postmaster
    await db.stop();
  });

  it("stops the postmaster by itself when its owner is SIGKILLed", async () => {
    const owner = await startOwner();
    const postmaster = postmasterPid(dir);
    const t0 = Date.now();
    await owner.kill9();
    while (isAlive(postmaster) && Date.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 50));
    assert.ok(!isAlive(postmaster), "the postmaster outlived its owner by 10 s");
    const db = await start();
    assert.deepEqual(await queryOne(db.url, "SELECT v FROM survivor"), { v: "still here" });
    await db.stop();
  });

  it("stops an orphaned postmaster (its owner and the owner's watchdog SIGKILLed), then starts", async () => {
    const owner = await startOwner();
    const orphan = postmasterPid(dir);
    const children = spawnSync("ps", ["-o", "pid=,args=", "--ppid", String(owner.pid)]).stdout.toString();
    const watchdog = /^\s*(\d+)\s.*cacheroach-pg-watchdog/m.exec(children);
    assert.ok(watchdog, children);
    process.kill(Number(watchdog[1]), "SIGKILL");
    await owner.kill9();
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.ok(isAlive(orphan), "without its watchdog, SIGKILL of the owner leaves the postmaster running");

    const db = await start();
    assert.ok(!isAlive(orphan), "the orphan was stopped");
    assert.notEqual(postmasterPid(dir), orphan);
    assert.deepEqual(await queryOne(db.url, "SELECT v FROM survivor"), { v: "still here" });
    await db.stop();
  });

  it("refuses an existing cluster whose password file is missing", async () => {
    mkdirSync(scratch, { recursive: true });
    renameSync(`${dir}.password`, `${dir}.password.bak`);
    try {
      await assert.rejects(startEmbeddedPostgres({ dir }), /password file .* is missing/);
    } finally {
      renameSync(`${dir}.password.bak`, `${dir}.password`);
    }
  });
});
