/** Content types of served files: by extension, by sniffing, and which ones are active (unit level). */
import assert from "node:assert/strict";
import { test } from "node:test";
import { isActiveContentType, sniff, typeByExtension } from "../src/http/content-type.js";

test("typeByExtension: the last extension of the last segment, any case; text types say utf-8", () => {
  assert.equal(typeByExtension("/site/index.HTML"), "text/html; charset=utf-8");
  assert.equal(typeByExtension("/a/b.tar.gz"), "application/gzip");
  assert.equal(typeByExtension("/data.csv"), "text/csv; charset=utf-8");
  assert.equal(typeByExtension("/img.svg"), "image/svg+xml");
  assert.equal(
    typeByExtension("/doc.docx"),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  );
  for (const none of ["/noext", "/.bashrc", "/a.d/noext", "/x.no-such-extension", "/trailing."])
    assert.equal(typeByExtension(none), undefined, none);
});

test("sniff: signatures, HTML, then text versus binary", () => {
  assert.equal(sniff(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0])), "image/png");
  assert.equal(sniff(Buffer.from("  <!DOCTYPE html><p>")), "text/html; charset=utf-8");
  assert.equal(sniff(Buffer.from("plain words\n")), "text/plain; charset=utf-8");
  assert.equal(sniff(Buffer.from([1, 2, 3])), "application/octet-stream");
});

test("active types: documents and scripts a browser would run", () => {
  for (const t of ["text/html; charset=utf-8", "image/svg+xml", "application/rss+xml", "text/javascript"])
    assert.equal(isActiveContentType(t), true, t);
  for (const t of ["text/plain", "image/png", "application/json; charset=utf-8", "application/pdf"])
    assert.equal(isActiveContentType(t), false, t);
});
