/** The cookie helpers and the Secure decision (unit level: no server). */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CacheroachError } from "../src/errors.js";
import { readCookie, serializeCookie, setCookie } from "../src/http/cookies.js";
import { Site } from "../src/http/site.js";
import type { HttpRequest, HttpResponse } from "../src/net/node-http.js";

const site = (publicUrl?: string) =>
  new Site({
    publicUrl: publicUrl === undefined ? undefined : new URL(publicUrl),
    activeContentHosts: new Set(),
    isVHost: async () => false,
  });
/** A request as far as Site looks at it: headers and whether its socket is TLS. */
const request = (encrypted: boolean) =>
  ({ headers: { host: "files.test" }, socket: { encrypted } }) as unknown as HttpRequest;

describe("serializeCookie", () => {
  test("always HttpOnly, SameSite=Lax, Path=/; Secure only when asked", () => {
    const plain = serializeCookie("authorization", "a.b.c", { secure: false });
    assert.equal(plain, "authorization=a.b.c; Path=/; HttpOnly; SameSite=Lax");
    const secure = serializeCookie("authorization", "a.b.c", { secure: true, maxAgeSeconds: 3600 });
    assert.equal(secure, "authorization=a.b.c; Max-Age=3600; Path=/; HttpOnly; Secure; SameSite=Lax");
    assert.equal(
      serializeCookie("k", "", { secure: false, maxAgeSeconds: 0 }),
      "k=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax",
    );
  });

  test("values are percent-encoded and read back; bad names and ages are refused", () => {
    const v = "tok en;=é";
    const set = serializeCookie("authorization", v, { secure: false });
    assert.ok(!set.slice(0, set.indexOf(";")).includes(" "), set);
    assert.equal(readCookie(set.slice(0, set.indexOf(";")), "authorization"), v);
    assert.throws(() => serializeCookie("bad name", "v", { secure: false }));
    assert.throws(() => serializeCookie("n;x", "v", { secure: false }));
    assert.throws(() => serializeCookie("n", "v", { secure: false, maxAgeSeconds: -1 }));
    assert.throws(() => serializeCookie("n", "v", { secure: false, maxAgeSeconds: 1.5 }));
  });

  test("setCookie appends to cookies already set", () => {
    const headers = new Map<string, unknown>();
    const res = {
      getHeader: (n: string) => headers.get(n),
      setHeader: (n: string, v: unknown) => headers.set(n, v),
    } as unknown as HttpResponse;
    setCookie(res, "a", "1", { secure: false });
    setCookie(res, "b", "2", { secure: true });
    assert.deepEqual(headers.get("set-cookie"), [
      "a=1; Path=/; HttpOnly; SameSite=Lax",
      "b=2; Path=/; HttpOnly; Secure; SameSite=Lax",
    ]);
  });
});

describe("readCookie", () => {
  test("finds the named cookie among others, exactly by name", () => {
    const h = "xauthorization=no; theme=dark;authorization=%2Fyes%3D; other=1";
    assert.equal(readCookie(h, "authorization"), "/yes=");
    assert.equal(readCookie('authorization="quoted"', "authorization"), "quoted");
    assert.equal(readCookie("theme=dark", "authorization"), undefined);
    assert.equal(readCookie(undefined, "authorization"), undefined);
  });

  test("malformed percent-encoding of that cookie is ERR_BAD_REQUEST; of others, ignored", () => {
    assert.throws(
      () => readCookie("authorization=%E0%A4%A", "authorization"),
      (e: unknown) =>
        e instanceof CacheroachError && e.code === "ERR_BAD_REQUEST" && /percent-encoding/.test(e.message),
    );
    assert.equal(readCookie("bad=%E0%A4%A; authorization=ok", "authorization"), "ok");
  });

  test("a malformed Cookie header is no cookie, never a failure", () => {
    for (const h of ["", ";", "=;;=", "authorization", " ; authorization ;", "=authorization", "a=\u0000"])
      assert.equal(readCookie(h, "authorization"), undefined, JSON.stringify(h));
    assert.equal(readCookie("authorization=", "authorization"), "");
    assert.equal(readCookie("authorization=1; authorization=2", "authorization"), "1");
  });
});

describe("Site.secureCookies", () => {
  test("Secure over TLS or when the public URL is https, not otherwise", () => {
    assert.equal(site().secureCookies(request(true)), true);
    assert.equal(site().secureCookies(request(false)), false);
    assert.equal(site("https://files.example.com").secureCookies(request(false)), true);
    assert.equal(site("http://files.example.com").secureCookies(request(false)), false);
  });
});
