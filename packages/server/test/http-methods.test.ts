/** Which handler answers which method on a file path (unit level: no server). */
import assert from "node:assert/strict";
import { test } from "node:test";
import { ALLOW, handleOptions, handlerFor } from "../src/http/file-methods.js";
import { handleDelete } from "../src/http/handlers/delete.js";
import { handleGet, handleHead } from "../src/http/handlers/get.js";
import { handlePost, handlePut } from "../src/http/handlers/put.js";

test("each method of the Allow list has its handler", () => {
  assert.equal(ALLOW, "GET, HEAD, PUT, POST, DELETE, OPTIONS");
  assert.equal(handlerFor("GET"), handleGet);
  assert.equal(handlerFor("HEAD"), handleHead);
  assert.equal(handlerFor("PUT"), handlePut);
  assert.equal(handlerFor("POST"), handlePost);
  assert.equal(handlerFor("DELETE"), handleDelete);
  assert.equal(handlerFor("OPTIONS"), handleOptions);
});

test("other methods, lower case and names of Object.prototype have none (405)", () => {
  for (const m of ["PATCH", "TRACE", "get", "constructor", "__proto__", "toString", "", undefined])
    assert.equal(handlerFor(m), undefined, String(m));
});
