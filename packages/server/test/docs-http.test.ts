import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";
import { startTestServer, type TestServer } from "../src/testing.js";

// docs/http.md promises that its examples work as written: run every `sh` block in order in one
// shell against a real server and compare each with the `text` block that follows it.
const run = promisify(execFile);
const DOC = new URL("../../../docs/http.md", import.meta.url);
let ts: TestServer;
let dir: string;

before(async () => {
  ts = await startTestServer();
  dir = await mkdtemp(join(tmpdir(), "cr-docs-"));
});
after(async () => {
  await ts?.close();
  await rm(dir, { recursive: true, force: true });
});

test("every example in docs/http.md gives the output it shows", async () => {
  const md = await readFile(DOC, "utf8");
  const blocks = [...md.matchAll(/```(sh|text)\n([\s\S]*?)```/g)].map((m) => ({ kind: m[1]!, body: m[2]! }));
  const steps: { code: string; expected: string | undefined }[] = [];
  blocks.forEach((b, i) => {
    if (b.kind !== "sh") return;
    const next = blocks[i + 1];
    steps.push({ code: b.body, expected: next?.kind === "text" ? next.body : undefined });
  });
  assert.ok(steps.length > 10, "the page has its examples");
  const marker = (i: number) => `@@step ${i}@@`;
  const script = ["set -eu", ...steps.flatMap((s, i) => [`echo '${marker(i)}'`, s.code])].join("\n");
  const { stdout } = await run("bash", ["-c", script], {
    cwd: dir,
    env: { ...process.env, CR: ts.url, TOKEN: ts.superToken, HOME: dir },
    maxBuffer: 16 << 20,
  });
  const outputs = stdout.split(/@@step \d+@@\n/).slice(1);
  assert.equal(outputs.length, steps.length, "every step ran");
  steps.forEach((s, i) => {
    if (s.expected !== undefined) assert.equal(outputs[i], s.expected, `example ${i + 1}:\n${s.code}`);
  });
});
