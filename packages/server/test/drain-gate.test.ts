import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createDrainGate, type DrainGate } from "../src/net/drain-gate.js";
import { type DualListener, listenDual } from "../src/net/dual-listener.js";

describe("createDrainGate", () => {
  let gate: DrainGate;
  let listener: DualListener;
  let base: string;

  before(async () => {
    gate = createDrainGate((req, res) => res.end(`handled ${req.url}`));
    listener = await listenDual(gate.handler, "127.0.0.1", 0);
    base = `http://127.0.0.1:${listener.port}`;
  });
  after(() => listener.close());

  it("passes every request through until the drain starts", async () => {
    assert.equal(gate.draining, false);
    for (const path of ["/readyz", "/healthz", "/some/file"])
      assert.equal(await (await fetch(`${base}${path}`)).text(), `handled ${path}`);
  });

  it("then answers 503 with Retry-After to all but /healthz, and /readyz says why", async () => {
    gate.start();
    assert.equal(gate.draining, true);
    const file = await fetch(`${base}/some/file?x=1`);
    assert.equal(file.status, 503);
    assert.equal(file.headers.get("retry-after"), "2");
    assert.equal(file.headers.get("cache-control"), "no-store");
    assert.equal(await file.text(), "server is shutting down\n");
    const ready = await fetch(`${base}/readyz`);
    assert.equal(ready.status, 503);
    assert.equal(await ready.text(), "not ready: server is shutting down\n");
    const live = await fetch(`${base}/healthz`);
    assert.equal(live.status, 200);
    assert.equal(await live.text(), "handled /healthz");
  });
});
