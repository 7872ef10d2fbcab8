/**
 * The web UI in a real browser (Debian's Chromium via playwright-core) against a real server and
 * PostgreSQL: log in by pasting a token, upload into a new folder, a folder of 100 files and a
 * 200 MiB file (streamed, with progress), download and compare hashes, copy a signed link and
 * fetch it with curl, replace a file after the overwrite prompt and restore the earlier version,
 * cancel an upload and find nothing written, delete with confirmation, drag and drop, keyboard
 * use, phone width, and a read-only grant's refusal shown in words.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createReadStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, afterEach, before } from "node:test";
import { promisify } from "node:util";
import { Files, Principals, Tenants, Tokens } from "@cacheroach/proto";
import { Code, ConnectError } from "@connectrpc/connect";
import type { BrowserContext, Page, Request } from "playwright-core";
import { browserTests, type Harness, logIn, skipReason, startHarness } from "./browser-harness.js";

const skip = skipReason();
const BIG = 200 * 1024 * 1024;
const UPLOAD_TIMEOUT = 10 * 60_000;

let h: Harness;
/** Failures say what the browser showed. */
const test = browserTests(() => h as Harness | undefined);
let ctx: BrowserContext;
let page: Page;
let tmp: string;
let tenantId: string;

async function sha256File(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

/** Writes `size` random bytes to `file`, a MiB at a time. */
async function randomFile(file: string, size: number): Promise<void> {
  const fh = await open(file, "w");
  try {
    for (let left = size; left > 0; left -= 1 << 20) await fh.write(randomBytes(Math.min(left, 1 << 20)));
  } finally {
    await fh.close();
  }
}

/** The upload row of `p` in the upload panel. */
const uploadRow = (p: string) => page.locator(`li.upload[data-path="${p}"]`);

async function uploadDone(p: string, timeout = 60_000): Promise<void> {
  await page.locator(`li.upload[data-path="${p}"][data-state="done"]`).waitFor({ timeout });
}

/** Opens the details dialog of the file named `name` in the current listing. */
async function openFile(name: string) {
  await page.getByRole("button", { name, exact: true }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  return dialog;
}

async function closeDialog() {
  await page.keyboard.press("Escape");
  await page.getByRole("dialog").waitFor({ state: "detached" });
}

async function statusOf(p: string): Promise<bigint | "missing"> {
  try {
    const r = await h.server.client(Files, h.server.superToken).stat({ tenantId, path: p });
    return r.file!.version;
  } catch (err) {
    if (err instanceof ConnectError && err.code === Code.NotFound) return "missing";
    throw err;
  }
}

before(async () => {
  if (skip) return;
  h = await startHarness();
  const t = await h.server.client(Tenants, h.server.superToken).ensure({ tenant: { label: "Team files" } });
  tenantId = t.tenant!.id;
  tmp = mkdtempSync(path.join(os.tmpdir(), "cacheroach-ui-"));
  writeFileSync(path.join(tmp, "hello.txt"), "hello from the browser\n");
  mkdirSync(path.join(tmp, "batch"));
  for (let i = 0; i < 100; i++)
    writeFileSync(
      path.join(tmp, "batch", `file-${String(i).padStart(3, "0")}.bin`),
      randomBytes(1000 + i * 97),
    );
  await randomFile(path.join(tmp, "big.bin"), BIG);
  ctx = await h.context();
  page = await ctx.newPage();
});

// A failed test must not leave a dialog over the next one's page.
afterEach(async () => {
  if (skip || !page) return;
  for (let i = 0; i < 3 && (await page.getByRole("dialog").count()) > 0; i++)
    await page.keyboard.press("Escape");
});

after(async () => {
  if (skip) return;
  await h?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test("a malformed or forged token is refused in words; a pasted token logs in", { skip }, async () => {
  await page.goto(`${h.server.url}/_/ui/`);
  const token = page.getByRole("textbox", { name: "Token" });
  await token.fill("not a token");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("alert").filter({ hasText: "does not look like a token" }).waitFor();
  await token.fill("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl");
  await page.getByRole("button", { name: "Log in" }).click();
  const refusal = page.getByRole("alert").filter({ hasText: "Logging in failed" });
  await refusal.waitFor();
  assert.match(await refusal.innerText(), /unauthenticated|ERR_/i);
  await logIn(page, h.server.url, h.server.superToken);
  await page.getByRole("combobox", { name: "Tenant" }).selectOption({ label: "Team files" });
  await page.getByText("No files yet.").waitFor();
});

test("uploading into a new folder creates it; breadcrumbs lead back", { skip }, async () => {
  await page.getByRole("button", { name: "New folder" }).click();
  await page.getByLabel("Folder name").fill("reports");
  await page.getByRole("button", { name: "Open folder" }).click();
  await page.getByText("/reports is empty").waitFor();
  await page.getByTestId("files-input").setInputFiles(path.join(tmp, "hello.txt"));
  await uploadDone("/reports/hello.txt");
  await page.getByRole("button", { name: "hello.txt", exact: true }).waitFor();
  assert.equal(await statusOf("/reports/hello.txt"), 1n);
  await page.getByRole("navigation", { name: "Folder" }).getByRole("link", { name: "Team files" }).click();
  const folder = page.getByRole("row").filter({ hasText: "reports/" });
  await folder.waitFor();
  assert.match(await folder.innerText(), /1 file/);
});

test("a folder of 100 files and a 200 MiB file upload, each with its own progress", { skip }, async () => {
  await page.getByTestId("folder-input").setInputFiles(path.join(tmp, "batch"));
  await page
    .locator('li.upload[data-state="done"][data-path^="/batch/"]')
    .nth(99)
    .waitFor({ timeout: 120_000 });
  assert.equal(await page.locator('li.upload[data-path^="/batch/"]').count(), 100);
  await page.getByRole("row").filter({ hasText: "batch/" }).filter({ hasText: "100 files" }).waitFor();

  await page.getByTestId("files-input").setInputFiles(path.join(tmp, "big.bin"));
  // Progress shows while it travels (a transfer at a time), then the new version.
  await page.locator('li.upload[data-path="/big.bin"][data-state="sending"] progress').waitFor();
  await uploadDone("/big.bin", UPLOAD_TIMEOUT);
  assert.match(await uploadRow("/big.bin").innerText(), /done: version 1/);
  const stat = await h.server.client(Files, h.server.superToken).stat({ tenantId, path: "/big.bin" });
  assert.equal(stat.file!.size, BigInt(BIG));
});

test("downloads are byte-identical (hashes compared)", { skip }, async () => {
  for (const [name, local] of [
    ["big.bin", path.join(tmp, "big.bin")],
    ["hello.txt", path.join(tmp, "hello.txt")],
  ] as const) {
    if (name === "hello.txt")
      await page.getByRole("row").filter({ hasText: "reports/" }).getByRole("link").click();
    const dialog = await openFile(name);
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      dialog.getByRole("button", { name: "Download" }).click(),
    ]);
    const saved = path.join(tmp, `downloaded-${name}`);
    await download.saveAs(saved);
    assert.equal(download.suggestedFilename(), name);
    assert.equal(await sha256File(saved), await sha256File(local), `${name} downloads intact`);
    rmSync(saved);
    await closeDialog();
  }
});

test("a signed link is copied with its expiry and works with curl", { skip }, async () => {
  const dialog = await openFile("hello.txt");
  await dialog.getByLabel("Valid for").selectOption({ label: "1 hour" });
  await dialog.getByRole("button", { name: "Copy link" }).click();
  const link = await dialog.getByTestId("signed-link").inputValue();
  assert.match(link, /^http:\/\/127\.0\.0\.1:\d+\/_\/v0\/retrieve\/hello\.txt\?access_token=/);
  assert.equal(await page.evaluate("navigator.clipboard.readText()"), link);
  assert.match(await dialog.innerText(), /Anyone with it can read this file until/);
  const { stdout } = await promisify(execFile)("curl", ["-sS", "--fail", link]);
  assert.equal(stdout, "hello from the browser\n");
  await closeDialog();
});

test("an existing name asks replace / keep both / skip; an earlier version is restored", {
  skip,
}, async () => {
  const v2 = path.join(tmp, "v2");
  mkdirSync(v2);
  writeFileSync(path.join(v2, "hello.txt"), "second version\n");
  await page.getByTestId("files-input").setInputFiles(path.join(v2, "hello.txt"));
  const ask = page.getByRole("dialog", { name: "File exists" });
  await ask.waitFor();
  assert.match(await ask.innerText(), /\/reports\/hello\.txt exists \(version 1\)/);
  await ask.getByRole("button", { name: "Replace" }).click();
  await page
    .locator('li.upload[data-path="/reports/hello.txt"][data-state="done"]')
    .filter({ hasText: "version 2" })
    .waitFor();

  await page.getByTestId("files-input").setInputFiles(path.join(v2, "hello.txt"));
  await ask.getByRole("button", { name: "Keep both" }).click();
  await uploadDone("/reports/hello (1).txt");
  await page.getByTestId("files-input").setInputFiles(path.join(v2, "hello.txt"));
  await ask.getByRole("button", { name: "Skip" }).click();
  await page.locator('li.upload[data-path="/reports/hello.txt"][data-state="skipped"]').waitFor();

  // The listing refreshes once the upload is done.
  await page
    .getByRole("row")
    .filter({ hasText: "hello.txt" })
    .locator("td.col-version", { hasText: "2" })
    .waitFor();
  const dialog = await openFile("hello.txt");
  await dialog.getByTestId("text-preview").filter({ hasText: "second version" }).waitFor();
  await dialog.getByRole("button", { name: "Show earlier versions" }).click();
  const v1 = dialog.locator('tr[data-version="1"]');
  await v1.getByRole("button", { name: "Restore" }).click();
  await dialog
    .getByText("Version3")
    .or(dialog.locator("dd", { hasText: /^3$/ }))
    .first()
    .waitFor();
  await dialog.getByTestId("text-preview").filter({ hasText: "hello from the browser" }).waitFor();
  assert.equal(await statusOf("/reports/hello.txt"), 3n);
  await closeDialog();
});

test("a cancelled upload writes nothing", { skip }, async () => {
  await page.getByRole("button", { name: "New folder" }).click();
  await page.getByLabel("Folder name").fill("cancelled");
  await page.getByRole("button", { name: "Open folder" }).click();
  await page.getByTestId("files-input").setInputFiles(path.join(tmp, "big.bin"));
  const row = uploadRow("/reports/cancelled/big.bin");
  await row
    .locator('[data-state="sending"]')
    .or(row.and(page.locator('[data-state="sending"]')))
    .first()
    .waitFor();
  await row.getByRole("button", { name: "Cancel /reports/cancelled/big.bin" }).click();
  await page.locator('li.upload[data-path="/reports/cancelled/big.bin"][data-state="cancelled"]').waitFor();
  assert.match(await row.innerText(), /cancelled: nothing was written/);
  assert.equal(await statusOf("/reports/cancelled/big.bin"), "missing");
  await page.getByRole("navigation", { name: "Folder" }).getByRole("link", { name: "reports" }).click();
});

test("delete asks first; cancel keeps the file, confirm removes it", { skip }, async () => {
  let dialog = await openFile("hello (1).txt");
  await dialog.getByRole("button", { name: "Delete…" }).click();
  const confirm = page.getByRole("dialog", { name: "Delete file?" });
  await confirm.getByRole("button", { name: "Cancel" }).click();
  await confirm.waitFor({ state: "detached" });
  assert.equal(await statusOf("/reports/hello (1).txt"), 1n);
  await dialog.getByRole("button", { name: "Delete…" }).click();
  await confirm.getByRole("button", { name: "Delete", exact: true }).click();
  await page.getByRole("dialog").waitFor({ state: "detached" });
  await page.getByRole("button", { name: "hello (1).txt", exact: true }).waitFor({ state: "detached" });
  assert.equal(await statusOf("/reports/hello (1).txt"), "missing");
  dialog = await openFile("hello.txt"); // the other file is untouched
  await closeDialog();
});

test("files and folders dropped on the listing upload", { skip }, async () => {
  // Page code as a string: the test files are type-checked without the DOM library.
  await page.evaluate(`(() => {
    const dt = new DataTransfer();
    dt.items.add(new File(["dropped\\n"], "dropped.txt", { type: "text/plain" }));
    const target = document.querySelector("section.browser");
    target.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
    target.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
  })()`);
  await uploadDone("/reports/dropped.txt");
  assert.equal(await statusOf("/reports/dropped.txt"), 1n);
});

test("works from the keyboard: sort, open, close", { skip }, async () => {
  await page.getByRole("button", { name: "Size" }).focus();
  await page.keyboard.press("Enter");
  await page.locator('th[aria-sort="ascending"]', { hasText: "Size" }).waitFor();
  await page.getByRole("button", { name: "hello.txt", exact: true }).focus();
  await page.keyboard.press("Enter");
  await page.getByRole("dialog").waitFor();
  await page.keyboard.press("Escape");
  await page.getByRole("dialog").waitFor({ state: "detached" });
});

test("a read-only grant's refusals are shown in words", { skip }, async () => {
  const admin = h.server;
  const p = await admin.client(Principals, admin.superToken).ensure({
    principal: { claimsJson: JSON.stringify({ name: "reader" }) },
  });
  const issued = await admin.client(Tokens, admin.superToken).issue({
    template: {
      principalId: p.principal!.id,
      capabilities: { read: true },
      scope: { kind: { case: "onLocation", value: { tenantId, path: "/*" } } },
      expiresAt: { seconds: BigInt(Math.floor(Date.now() / 1000) + 1800) },
    },
    capExpiry: true,
  });
  const readerCtx = await h.context();
  const reader = await readerCtx.newPage();
  try {
    await logIn(reader, admin.url, issued.token!.jwt);
    await reader.getByRole("link", { name: "reports/" }).click();
    await reader.getByRole("button", { name: "dropped.txt", exact: true }).waitFor();
    writeFileSync(path.join(tmp, "refused.txt"), "no\n");
    await reader.getByTestId("files-input").setInputFiles(path.join(tmp, "refused.txt"));
    const failed = reader.locator('li.upload[data-path="/reports/refused.txt"][data-state="failed"]');
    await failed.waitFor();
    assert.match(
      await failed.innerText(),
      /this session lacks write on \/reports\/refused\.txt.*ERR_PERMISSION_DENIED/s,
    );
    await reader.getByRole("button", { name: "dropped.txt", exact: true }).click();
    await reader.getByRole("button", { name: "Delete…" }).click();
    await reader
      .getByRole("dialog", { name: "Delete file?" })
      .getByRole("button", { name: "Delete", exact: true })
      .click();
    const alert = reader.getByRole("alert").filter({ hasText: "Deleting /reports/dropped.txt failed" });
    await alert.waitFor();
    assert.match(await alert.innerText(), /lacks write/);
    assert.match(await alert.innerText(), /not allowed to do this here/);
    assert.equal(await statusOf("/reports/dropped.txt"), 1n);
    assert.equal(await statusOf("/reports/refused.txt"), "missing");
  } finally {
    await readerCtx.close();
  }
});

test("a browser session cookie logs the page in (where an OIDC login plugs in)", { skip }, async () => {
  const cookieCtx = await h.context();
  try {
    await cookieCtx.addCookies([{ name: "authorization", value: h.server.superToken, url: h.server.url }]);
    const p = await cookieCtx.newPage();
    await p.goto(`${h.server.url}/_/ui/`);
    await p.getByRole("button", { name: "Log out" }).waitFor();
    assert.equal(await p.getByRole("textbox", { name: "Token" }).count(), 0, "no token was asked for");
    await p.getByRole("combobox", { name: "Tenant" }).selectOption({ label: "Team files" });
    await p.getByRole("link", { name: "reports/" }).waitFor();
  } finally {
    await cookieCtx.close();
  }
});

test("readable at phone width: nothing overflows sideways", { skip }, async () => {
  const phone = await h.context(390, 844);
  const p = await phone.newPage();
  try {
    await logIn(p, h.server.url, h.server.superToken);
    await p.getByRole("combobox", { name: "Tenant" }).selectOption({ label: "Team files" });
    await p.getByRole("link", { name: "reports/" }).click();
    await p.getByRole("button", { name: "hello.txt", exact: true }).waitFor();
    const overflow = await p.evaluate<number>("document.documentElement.scrollWidth - window.innerWidth");
    assert.ok(overflow <= 0, `page is ${overflow}px wider than the screen`);
  } finally {
    await phone.close();
  }
});

test("a listing that fails on the way is retried; one that keeps failing offers Try again", {
  skip,
}, async () => {
  const c = await h.context();
  c.setDefaultTimeout(30_000);
  const p = await c.newPage();
  const LIST = "**/cacheroach.v1.Files/List";
  try {
    let resets = 1;
    await p.route(LIST, (route) => (resets-- > 0 ? route.abort("connectionreset") : route.continue()));
    await logIn(p, h.server.url, h.server.superToken);
    await p.getByRole("combobox", { name: "Tenant" }).selectOption({ label: "Team files" });
    await p.getByRole("link", { name: "reports/" }).waitFor(); // the reset request was sent again
    await p.unroute(LIST);
    await p.route(LIST, (route) => route.abort("connectionreset"));
    await p.getByRole("link", { name: "reports/" }).click();
    const alert = p.getByRole("alert").filter({ hasText: "Listing /reports failed" });
    await alert.waitFor(); // after its retries
    await p.unroute(LIST);
    await alert.getByRole("button", { name: "Try again" }).click();
    await p.getByRole("button", { name: "hello.txt", exact: true }).waitFor();
    assert.equal(await p.getByRole("alert").count(), 0, "the failure is gone once the listing shows");
  } finally {
    await c.close();
  }
});

test("a late answer for a folder left behind does not replace the folder shown", { skip }, async () => {
  const c = await h.context();
  c.setDefaultTimeout(30_000);
  const p = await c.newPage();
  try {
    // The first listing of Team files (its root) is held back until the test lets it answer.
    let release: () => void = () => undefined;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let held: Request | undefined;
    await p.route("**/cacheroach.v1.Files/List", async (route) => {
      if (!held && route.request().postDataBuffer()?.includes(tenantId)) {
        held = route.request();
        await released;
      }
      await route.continue();
    });
    await logIn(p, h.server.url, h.server.superToken);
    await p.getByRole("combobox", { name: "Tenant" }).selectOption({ label: "Team files" });
    await p.evaluate(`location.hash = "#/files/${tenantId}/reports"`);
    await p.getByRole("button", { name: "hello.txt", exact: true }).waitFor();
    assert.ok(held, "the root's listing was held back");
    const lateAnswer = p.waitForResponse((r) => r.request() === held);
    release();
    await (await lateAnswer).finished();
    await p.waitForTimeout(500); // the page has had time to apply it, were it going to
    assert.equal(await p.getByRole("link", { name: "reports/" }).count(), 0, "no row of the root shows");
    await p.getByRole("button", { name: "hello.txt", exact: true }).waitFor();
  } finally {
    await c.close();
  }
});

test("a tenant picked before the page picks one for the user stays picked", { skip }, async () => {
  const c = await h.context();
  c.setDefaultTimeout(30_000);
  const p = await c.newPage();
  try {
    // Another tenant sorts first, so the page would pick it; the user picks Team files as soon as
    // the list shows, before the page's own pick runs (which waits for the next paint).
    await h.server
      .client(Tenants, h.server.superToken)
      .ensure({ tenant: { label: "Archive (sorts first)" } });
    await p.addInitScript({
      content: `new MutationObserver((_, observer) => {
        const select = document.querySelector(".tenant-pick select");
        const team = select && [...select.options].find((o) => o.text === "Team files");
        if (!select || !team) return;
        observer.disconnect();
        select.value = team.value;
        select.dispatchEvent(new Event("change", { bubbles: true }));
      }).observe(document, { subtree: true, childList: true });`,
    });
    await logIn(p, h.server.url, h.server.superToken);
    await p.getByRole("link", { name: "reports/" }).waitFor();
    await p.waitForTimeout(500); // the page's own pick has run by now, were it going to
    assert.ok(p.url().endsWith(`#/files/${tenantId}/`), `still on Team files: ${p.url()}`);
    await p.getByRole("link", { name: "reports/" }).waitFor();
  } finally {
    await c.close();
  }
});
