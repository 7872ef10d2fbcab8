import assert from "node:assert/strict";
import { test } from "node:test";
import { CAP, grants, pathCovers, type Scope, type SessionInfo, scopeCovers } from "../src/auth/session.js";

const T = "11111111-1111-1111-1111-111111111111";
const U = "22222222-2222-2222-2222-222222222222";
const P = "33333333-3333-3333-3333-333333333333";
const Q = "44444444-4444-4444-4444-444444444444";
const loc = (path: string, tenantId = T, version = 0): Scope => ({
  kind: "location",
  tenantId,
  path,
  version,
});

test("path patterns: /dir/* covers everything below /dir/, exact paths cover only themselves", () => {
  const table: [string, string, boolean][] = [
    ["/*", "/a", true],
    ["/*", "/a/b/c", true],
    ["/*", "/*", true], // a pattern covers itself (equal scopes are subsets)
    ["/dir/*", "/dir/*", true],
    ["/dir/*", "/dir/a", true],
    ["/dir/*", "/dir/a/b", true],
    ["/dir/*", "/dir/sub/*", true],
    ["/dir/*", "/dir", false],
    ["/dir/*", "/dir2/a", false],
    ["/dir/*", "/di", false],
    ["/dir/*", "/other/dir/a", false],
    ["/dir/a", "/dir/a", true],
    ["/dir/a", "/dir/a/b", false], // the original treated exact paths as prefixes; we do not
    ["/dir/a", "/dir/ab", false],
    ["/dir/a", "/dir", false],
    ["/", "/x", false],
  ];
  for (const [held, want, ok] of table) assert.equal(pathCovers(held, want), ok, `${held} covers ${want}`);
});

test("scope subset table", () => {
  const table: [Scope, Scope, boolean, string][] = [
    [{ kind: "super" }, { kind: "super" }, true, "super ⊆ super"],
    [{ kind: "super" }, loc("/a"), true, "anything ⊆ super"],
    [{ kind: "super" }, { kind: "principal", principalId: P }, true, "principal ⊆ super"],
    [loc("/*"), { kind: "super" }, false, "super ⊄ location"],
    [{ kind: "principal", principalId: P }, { kind: "super" }, false, "super ⊄ principal"],
    [{ kind: "principal", principalId: P }, { kind: "principal", principalId: P }, true, "same principal"],
    [{ kind: "principal", principalId: P }, { kind: "principal", principalId: Q }, false, "other principal"],
    [{ kind: "principal", principalId: P }, loc("/a"), false, "location ⊄ principal (only via grants)"],
    [loc("/*"), { kind: "principal", principalId: P }, false, "principal ⊄ location"],
    [loc("/*"), loc("/a/b"), true, "whole tenant"],
    [loc("/*"), loc("/a/*"), true, "narrower pattern"],
    [loc("/a/*"), loc("/*"), false, "wider pattern"],
    [loc("/a/*"), loc("/a/b/*"), true, "sub-pattern"],
    [loc("/a/*"), loc("/b/c"), false, "sibling"],
    [loc("/*"), loc("/a", U), false, "other tenant"],
    [loc("/a"), loc("/a"), true, "exact path"],
    [loc("/a"), loc("/a/b"), false, "exact path is not a prefix"],
    [loc("/a", T, 3), loc("/a", T, 3), true, "same pinned version"],
    [loc("/a", T, 3), loc("/a", T, 4), false, "other version"],
    [loc("/a", T, 3), loc("/a", T, 0), false, "any version ⊄ one version"],
    [loc("/a", T, 0), loc("/a", T, 4), true, "one version ⊆ any version"],
  ];
  for (const [held, want, ok, why] of table) assert.equal(scopeCovers(held, want), ok, why);
});

test("grants: capabilities are a subset, super needs no bits", () => {
  const s = (caps: number, scope: Scope): SessionInfo => ({
    id: undefined,
    principalId: P,
    caps,
    scope,
    expiresAt: new Date(Date.now() + 1000),
    issuedAt: new Date(),
    name: "",
    note: "",
    issuedBy: undefined,
  });
  const need = (caps: number, path = "/a") => ({ caps, tenantId: T, path });
  assert.equal(grants(s(0, { kind: "super" }), need(CAP.write)), true);
  assert.equal(grants(s(CAP.read, loc("/*")), need(CAP.read)), true);
  assert.equal(grants(s(CAP.read, loc("/*")), need(CAP.write)), false);
  assert.equal(grants(s(CAP.read, loc("/*")), need(CAP.read | CAP.write)), false);
  assert.equal(grants(s(CAP.read | CAP.write, loc("/a")), need(CAP.write)), true);
  assert.equal(grants(s(CAP.read | CAP.write, loc("/a")), need(CAP.write, "/a/b")), false);
  assert.equal(
    grants(s(31, { kind: "principal", principalId: P }), need(CAP.read)),
    false,
    "logins act only through grants",
  );
  assert.equal(grants(s(CAP.read, loc("/*", U)), need(CAP.read)), false, "other tenant");
});
