/** Content-Disposition of downloads (unit level): what a parser reads back is the file's name. */
import assert from "node:assert/strict";
import { test } from "node:test";
import { parse } from "content-disposition";
import { attachment } from "../src/http/disposition.js";

test("the ASCII name is always quoted; the exact name travels as RFC 8187 UTF-8", () => {
  assert.equal(attachment("/dir/a.txt"), `attachment; filename="a.txt"; filename*=UTF-8''a.txt`);
  assert.equal(attachment("/ü.txt"), `attachment; filename="_.txt"; filename*=UTF-8''%C3%BC.txt`);
});

test("every name reads back exactly, quotes, apostrophes and all", () => {
  for (const name of [
    "report final.txt",
    "it's (1)*.txt",
    'say "hi"\\.txt',
    "日本語.pdf",
    "a;b=c",
    "%41.txt",
    "tab\tx",
  ]) {
    const h = attachment(`/x/${name}`);
    const parsed = parse(h);
    assert.equal(parsed.type, "attachment");
    assert.equal(parsed.parameters["filename"], name, h);
    // RFC 8187 ext-value: a charset, an empty language, then only attr-char and %XX.
    assert.match(
      parsed.parameters["filename*"] ?? "",
      /^UTF-8''(?:%[0-9A-F]{2}|[A-Za-z0-9!#$&+.^_`|~-])*$/,
      h,
    );
  }
});
