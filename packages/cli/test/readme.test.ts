/**
 * The README promises its quickstart and multi-user flow work as written. This runs those shell
 * blocks against a real server with two substitutions only: the test server's address for
 * http://127.0.0.1:13013, and its signing key file for `--data-dir .cacheroach-data`. `npx
 * cacheroach` is shimmed to this checkout's CLI (npx would otherwise look outside the repo).
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { CLI_BIN, useCliServer } from "./helpers.js";

const run = promisify(execFile);
const README = fileURLToPath(new URL("../../../README.md", import.meta.url));
const srv = useCliServer({
  setup: async (s) => {
    await writeFile(join(s.dir, "key"), Buffer.from(s.ts.signingKey).toString("base64"));
  },
});

/** Runs shell lines one by one, printing each line's exit status after its output. */
async function runLines(block: string): Promise<string> {
  const lines = block
    .split("\n")
    .filter((l) => l.trim() !== "" && !l.trim().startsWith("#"))
    .map((l) =>
      l
        .replaceAll("http://127.0.0.1:13013", srv.ts.url)
        .replaceAll("--data-dir .cacheroach-data", `--signing-key @${join(srv.dir, "key")}`),
    );
  const script = [
    `npx() { if [ "$1" = cacheroach ]; then shift; node ${JSON.stringify(CLI_BIN)} "$@"; else command npx "$@"; fi; }`,
    // A group, so that a line's trailing comment does not swallow the redirection.
    ...lines.map((l) => `{ ${l}\n} 2>&1\necho "[exit $?]"`),
  ].join("\n");
  const { stdout } = await run("bash", ["-c", script], {
    cwd: srv.dir,
    env: { ...process.env, HOME: srv.dir },
    maxBuffer: 8 << 20,
  });
  return stdout;
}

test("the README's quickstart and multi-user flow work as written", { timeout: 180_000 }, async () => {
  const md = await readFile(README, "utf8");
  const blocks = [...md.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const quick = blocks.find((b) => b.includes("cacheroach bootstrap"));
  const multi = blocks.find((b) => b.includes("principal create alice"));
  assert.ok(quick && multi, "the README has both blocks");

  const q = await runLines(quick);
  assert.equal((q.match(/\[exit 0\]/g) ?? []).length, 7, `every quickstart step succeeds:\n${q}`);
  assert.match(q, /^[\w-]+\.[\w-]+\.[\w-]+$/m, "the quickstart prints the token the web UI asks for");
  assert.equal((q.match(/^Hello World\.$/gm) ?? []).length, 2, "file get and curl both return the file");

  const m = await runLines(multi);
  const exits = [...m.matchAll(/\[exit (\d+)\]/g)].map((x) => Number(x[1]));
  assert.deepEqual(
    exits,
    [0, 0, 0, 0, 0, 3, 0],
    `alice works within her grant and is refused outside it:\n${m}`,
  );
  assert.match(m, /\/notes\/hello\.txt/);

  const files = blocks.find((b) => b.includes("file sync ./photos"));
  assert.ok(files, "the README has the files block");
  const f = await runLines(files);
  // The output of each line, in order.
  const outs = f.split(/\[exit \d+\]\n?/).slice(0, -1);
  assert.deepEqual(
    [...f.matchAll(/\[exit (\d+)\]/g)].map((x) => Number(x[1])),
    [0, 0, 0, 0, 0, 0, 0, 0, 0],
    `every files step succeeds:\n${f}`,
  );
  assert.match(outs[1]!, /uploaded \/photos\/a\.txt/);
  assert.equal(outs[2], "/photos/2026/\n/photos/a.txt\n", "one level, like ls");
  assert.match(outs[3]!, /\/photos\/2026\/b\.txt\n/);
  assert.match(outs[4]!, /uploaded \/photos\/a\.txt \(changed\)/);
  assert.equal((outs[5]!.match(/^\s*[12]\s/gm) ?? []).length, 2, `two versions:\n${outs[5]}`);
  assert.equal(await readFile(join(srv.dir, "restored", "2026", "b.txt"), "utf8"), "two\n");
  assert.match(outs[7]!, /\/logs\/stdin/);
  assert.match(outs[8]!, /\/photos\/2026\/b\.txt/);
  assert.match(outs[8]!, /nothing was deleted/);
  assert.match(outs[1]!, /2 uploaded \(8 B\), 0 unchanged/);
});
