/** TokenSigner: the verified-token cache never outlives a token's expiry or accepts a forgery. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { test } from "node:test";
import type { SessionInfo } from "../src/auth/session.js";
import { TokenSigner } from "../src/auth/token-signer.js";

function session(expiresInMs: number): SessionInfo {
  const now = Date.now();
  return {
    id: "00000000-0000-4000-8000-000000000001",
    principalId: "00000000-0000-4000-8000-000000000002",
    caps: 1,
    scope: { kind: "super" },
    issuedAt: new Date(now - 1000),
    expiresAt: new Date(now + expiresInMs),
    name: "",
    note: "",
    issuedBy: undefined,
  };
}

test("a cached token stops verifying at its expiry", async () => {
  const signer = new TokenSigner([randomBytes(32)]);
  const jwt = await signer.sign(session(1500));
  assert.equal((await signer.verify(jwt)).caps, 1);
  assert.equal((await signer.verify(jwt)).caps, 1); // from the cache
  await new Promise((r) => setTimeout(r, 2100));
  await assert.rejects(signer.verify(jwt), /expired/);
});

test("a token is checked against every key, and a cached one does not vouch for a forgery", async () => {
  const oldKey = randomBytes(32);
  const rotated = new TokenSigner([randomBytes(32), oldKey]);
  const jwt = await new TokenSigner([oldKey]).sign(session(60_000));
  assert.equal((await rotated.verify(jwt)).principalId, "00000000-0000-4000-8000-000000000002");
  const [h, p, sig] = jwt.split(".");
  const forged = `${h}.${p}.${sig!.slice(0, -2)}${sig!.endsWith("AA") ? "BB" : "AA"}`;
  await assert.rejects(rotated.verify(forged), /signature/);
  const stranger = await new TokenSigner([randomBytes(32)]).sign(session(60_000));
  await assert.rejects(rotated.verify(stranger), /signature/);
});
