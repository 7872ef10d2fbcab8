/**
 * The main screens of the web UI, as docs/web-ui.md shows them: each page is opened in Chromium
 * and its main elements must render (this fails when a screen breaks). With WRITE_SCREENSHOTS=1
 * the screenshots in docs/img/ are written anew; docs/web-ui.md must show every one of them.
 */
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test as plainTest } from "node:test";
import { Tenants, Uploads } from "@cacheroach/proto";
import type { BrowserContext, Page } from "playwright-core";
import { browserTests, type Harness, logIn, skipReason, startHarness } from "./browser-harness.js";

const skip = skipReason();
const ROOT = path.resolve(import.meta.dirname, "../../..");
const IMG = path.join(ROOT, "docs/img");
const WRITE = process.env["WRITE_SCREENSHOTS"] === "1";
/** Screen name → docs/img file. */
const SCREENS = ["login", "files", "details", "uploads", "admin-sessions", "phone"] as const;
const file = (name: string) => path.join(IMG, `web-ui-${name}.png`);

let h: Harness;
/** Failures say what the browser showed. */
const test = browserTests(() => h as Harness | undefined);
let ctx: BrowserContext;
let page: Page;
let tenantId: string;
let tmp: string;

async function shot(p: Page, name: (typeof SCREENS)[number]): Promise<void> {
  if (WRITE) await p.screenshot({ path: file(name), fullPage: false });
}

before(async () => {
  if (skip) return;
  h = await startHarness();
  const t = await h.server.client(Tenants, h.server.superToken).ensure({ tenant: { label: "Design team" } });
  tenantId = t.tenant!.id;
  const uploads = h.server.client(Uploads, h.server.superToken);
  const put = (p: string, text: string, contentType = "") =>
    uploads.begin({
      tenantId,
      path: p,
      committed: { case: "contents", value: Buffer.from(text) },
      contentType,
    });
  await put("/README.md", "# Design team\n\nShared assets for the spring launch.\n", "text/markdown");
  await put(
    "/notes/meeting-2026-03-02.txt",
    "Agenda\n- logo review\n- launch page copy\n- print deadlines\n\nDecisions\n- go with the blue mark\n",
    "text/plain",
  );
  await put(
    "/notes/meeting-2026-03-02.txt",
    "Agenda\n- logo review\n- launch page copy\n- print deadlines\n",
    "text/plain",
  );
  await put("/notes/todo.txt", "send proofs to the printer\n", "text/plain");
  for (let i = 1; i <= 4; i++) await put(`/photos/shoot-${i}.jpg`, "x".repeat(20000 * i), "image/jpeg");
  await put(
    "/brand/palette.json",
    JSON.stringify({ primary: "#1a5fb4", accent: "#26734d" }, null, 2),
    "application/json",
  );
  tmp = mkdtempSync(path.join(os.tmpdir(), "cacheroach-shots-"));
  for (const n of ["cover.txt", "back.txt", "spine.txt"])
    writeFileSync(path.join(tmp, n), `${n}\n`.repeat(2000));
  ctx = await h.context(1200, 760);
  page = await ctx.newPage();
});

after(async () => {
  if (skip) return;
  await h?.close();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

test("login screen", { skip }, async () => {
  await page.goto(`${h.server.url}/_/ui/`);
  await page.getByRole("textbox", { name: "Token" }).waitFor();
  await page.getByRole("button", { name: "Log in" }).waitFor();
  await page.getByRole("checkbox", { name: "Remember on this device" }).waitFor();
  await shot(page, "login");
});

test("file listing with breadcrumbs, folders, sortable columns", { skip }, async () => {
  await logIn(page, h.server.url, h.server.superToken);
  await page.getByRole("combobox", { name: "Tenant" }).selectOption({ label: "Design team" });
  for (const name of ["notes/", "photos/", "brand/"]) await page.getByRole("link", { name }).waitFor();
  await page.getByRole("button", { name: "README.md", exact: true }).waitFor();
  for (const col of ["Name", "Size", "Modified"]) await page.getByRole("button", { name: col }).waitFor();
  await page.getByRole("navigation", { name: "Folder" }).waitFor();
  await page.getByRole("button", { name: "Upload files" }).waitFor();
  await shot(page, "files");
});

test("file details: metadata, preview, signed link, versions", { skip }, async () => {
  await page.getByRole("link", { name: "notes/" }).click();
  await page.getByRole("button", { name: "meeting-2026-03-02.txt" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.getByTestId("content-hash").waitFor();
  await dialog.getByTestId("text-preview").filter({ hasText: "logo review" }).waitFor();
  await dialog.getByRole("button", { name: "Copy link" }).click();
  await dialog.getByTestId("signed-link").waitFor();
  await dialog.getByRole("button", { name: "Show earlier versions" }).click();
  await dialog.locator('tr[data-version="1"]').waitFor();
  await shot(page, "details");
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "detached" });
});

test("uploads panel with per-file results", { skip }, async () => {
  await page
    .getByTestId("files-input")
    .setInputFiles(["cover.txt", "back.txt", "spine.txt"].map((n) => path.join(tmp, n)));
  for (const n of ["cover.txt", "back.txt", "spine.txt"])
    await page.locator(`li.upload[data-path="/notes/${n}"][data-state="done"]`).waitFor();
  await page.getByRole("region", { name: "Uploads" }).waitFor();
  await page.getByRole("button", { name: "cover.txt", exact: true }).waitFor();
  await shot(page, "uploads");
});

test("administration: sessions and grants", { skip }, async () => {
  await page.getByRole("link", { name: "Admin" }).click();
  await page.getByRole("heading", { name: "Tenants" }).waitFor();
  await page.getByRole("cell", { name: "Design team" }).waitFor();
  await page.getByRole("link", { name: "Sessions" }).click();
  await page.getByRole("heading", { name: "Sessions" }).waitFor();
  await page.getByRole("form", { name: "Grant" }).waitFor();
  await page.getByRole("cell", { name: "super" }).first().waitFor();
  await shot(page, "admin-sessions");
  await page.getByRole("link", { name: "Virtual hosts" }).click();
  await page.getByRole("cell", { name: "*" }).waitFor();
  await page.getByRole("link", { name: "Principals" }).click();
  await page.getByRole("cell", { name: "root" }).waitFor();
});

test("phone width", { skip }, async () => {
  const phone = await h.context(390, 760);
  const p = await phone.newPage();
  try {
    await logIn(p, h.server.url, h.server.superToken);
    await p.getByRole("combobox", { name: "Tenant" }).selectOption({ label: "Design team" });
    await p.getByRole("link", { name: "photos/" }).click();
    await p.getByRole("button", { name: "shoot-1.jpg" }).waitFor();
    await shot(p, "phone");
  } finally {
    await phone.close();
  }
});

plainTest("docs/web-ui.md shows every screenshot, and every screenshot exists", () => {
  const doc = readFileSync(path.join(ROOT, "docs/web-ui.md"), "utf8");
  for (const name of SCREENS) {
    assert.ok(doc.includes(`img/web-ui-${name}.png`), `docs/web-ui.md shows web-ui-${name}.png`);
    assert.ok(existsSync(file(name)), `docs/img/web-ui-${name}.png exists (WRITE_SCREENSHOTS=1 writes it)`);
  }
});
