/** The fetch address policy: every textual form of an address is judged by where it leads. */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CacheroachError } from "../src/errors.js";
import { addressPolicy, classifyAddress, isLocalhostName } from "../src/uploads/address-policy.js";

/** [address as it may appear (URL host, DNS answer or socket peer), expected range]. */
const NON_PUBLIC: [string, string][] = [
  // IPv4 loopback in every notation inet_aton and the WHATWG URL parser accept.
  ["127.0.0.1", "loopback"],
  ["127.255.255.254", "loopback"],
  ["2130706433", "loopback"],
  ["0x7f.1", "loopback"],
  ["0x7f000001", "loopback"],
  ["017700000001", "loopback"],
  ["0177.0.0.1", "loopback"],
  ["127.1", "loopback"],
  // IPv6 loopback and every IPv6 form that carries 127.0.0.1.
  ["::1", "loopback"],
  ["[::1]", "loopback"],
  ["0:0:0:0:0:0:0:1", "loopback"],
  ["::ffff:127.0.0.1", "loopback"],
  ["::ffff:7f00:1", "loopback"],
  ["[0:0:0:0:0:ffff:7f00:1]", "loopback"],
  ["::127.0.0.1", "loopback"],
  ["::7f00:1", "loopback"],
  ["::ffff:0:7f00:1", "loopback"],
  ["64:ff9b::7f00:1", "loopback"],
  ["64:ff9b::127.0.0.1", "loopback"],
  ["2002:7f00:1::", "loopback"],
  ["2002:7f00:0001:0:0:0:0:1", "loopback"],
  ["2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback"], // Teredo, client 127.0.0.1 (inverted)
  ["2001:0:7f00:1::1", "loopback"], // Teredo, server 127.0.0.1
  // The cloud metadata service and the rest of link-local.
  ["169.254.169.254", "linkLocal"],
  ["::ffff:169.254.169.254", "linkLocal"],
  ["::ffff:a9fe:a9fe", "linkLocal"],
  ["0xa9fea9fe", "linkLocal"],
  ["2852039166", "linkLocal"],
  ["64:ff9b::a9fe:a9fe", "linkLocal"],
  ["2002:a9fe:a9fe::1", "linkLocal"],
  ["169.254.0.1", "linkLocal"],
  ["fe80::1", "linkLocal"],
  ["fe80::1%eth0", "linkLocal"],
  ["febf::1", "linkLocal"],
  // Private, shared, benchmarking, unspecified, broadcast, multicast.
  ["10.0.0.1", "private"],
  ["172.16.0.1", "private"],
  ["172.31.255.255", "private"],
  ["192.168.1.1", "private"],
  ["::ffff:10.0.0.1", "private"],
  ["::ffff:192.168.0.1", "private"],
  ["2002:c0a8:101::", "private"],
  ["100.64.0.1", "carrierGradeNat"],
  ["100.127.255.255", "carrierGradeNat"],
  ["198.18.0.1", "reserved"],
  ["198.19.255.255", "reserved"],
  ["0.0.0.0", "unspecified"],
  ["0", "unspecified"],
  ["0.1.2.3", "unspecified"],
  ["::", "unspecified"],
  ["::ffff:0.0.0.0", "unspecified"],
  ["255.255.255.255", "broadcast"],
  ["224.0.0.1", "multicast"],
  ["239.255.255.250", "multicast"],
  ["ff02::1", "multicast"],
  ["ff0e::1", "multicast"],
  // Unique-local and the deprecated site-local IPv6 ranges.
  ["fc00::1", "uniqueLocal"],
  ["fd12:3456:789a::1", "uniqueLocal"],
  ["fec0::1", "deprecatedSiteLocal"],
  // Documentation, reserved and other special-purpose ranges.
  ["192.0.2.1", "reserved"],
  ["198.51.100.7", "reserved"],
  ["203.0.113.9", "reserved"],
  ["192.0.0.8", "reserved"],
  ["240.0.0.1", "reserved"],
  ["2001:db8::1", "reserved"],
  ["2001:2::1", "benchmarking"],
  ["100::1", "discard"],
  ["64:ff9b:1::1", "rfc6052"], // local-use NAT64: a site's own translator
];

const PUBLIC = [
  "8.8.8.8",
  "1.1.1.1",
  "172.32.0.1",
  "100.128.0.1",
  "192.169.0.1",
  "2606:4700::1111",
  "2a00:1450:4001:80b::200e",
  "::ffff:8.8.8.8",
  "64:ff9b::808:808", // NAT64 of 8.8.8.8: what a DNS64 resolver answers on an IPv6-only network
  "2002:808:808::1", // 6to4 of 8.8.8.8
];

describe("classifyAddress", () => {
  for (const [address, range] of NON_PUBLIC) {
    test(`${address} is ${range}, not public`, () => {
      const c = classifyAddress(address);
      assert.equal(c.isPublic, false);
      assert.equal(c.range, range);
    });
  }
  for (const address of PUBLIC) {
    test(`${address} is public`, () => {
      assert.equal(classifyAddress(address).isPublic, true);
    });
  }

  test("the metadata service is named, embedded IPv4 addresses are shown", () => {
    assert.match(classifyAddress("169.254.169.254").description, /link-local .*cloud metadata/);
    assert.match(classifyAddress("0xa9fea9fe").description, /cloud metadata/);
    assert.equal(classifyAddress("::ffff:7f00:1").embedded, "127.0.0.1");
    assert.equal(classifyAddress("2002:7f00:1::").embedded, "127.0.0.1");
  });

  test("anything that is not an IP address is not public", () => {
    for (const text of [
      "",
      "example.com",
      "localhost",
      "1.2.3.4.5",
      "::g",
      "[::1",
      "256.0.0.1",
      "08.0.0.1",
    ]) {
      const c = classifyAddress(text);
      assert.equal(c.isPublic, false, text);
      assert.equal(c.range, "invalid", text);
    }
  });

  test("URL host forms normalise to a form the classifier judges the same", () => {
    // What the WHATWG URL parser (used by fetchRemote) makes of each literal.
    const cases: [string, string][] = [
      ["http://2130706433/", "loopback"],
      ["http://0x7f.1/", "loopback"],
      ["http://017700000001/", "loopback"],
      ["http://0xa9fea9fe/", "linkLocal"],
      ["http://[::ffff:127.0.0.1]/", "loopback"],
      ["http://[::127.0.0.1]/", "loopback"],
      ["http://[0:0:0:0:0:ffff:7f00:1]/", "loopback"],
      ["http://[::ffff:169.254.169.254]/", "linkLocal"],
    ];
    for (const [url, range] of cases) {
      const host = new URL(url).hostname;
      assert.equal(classifyAddress(host).range, range, `${url} (host ${host})`);
    }
  });
});

describe("isLocalhostName", () => {
  test("localhost and every name under .localhost", () => {
    for (const h of ["localhost", "LOCALHOST", "localhost.", "a.localhost", "x.y.Localhost."])
      assert.equal(isLocalhostName(h), true, h);
    for (const h of ["localhost.example.com", "notlocalhost", "example.com", "localhos"])
      assert.equal(isLocalhostName(h), false, h);
  });
});

describe("addressPolicy", () => {
  const strict = addressPolicy(false);
  const open = addressPolicy(true);

  /** Asserts that `fn` throws the network-policy refusal matching `re`. */
  const refused = (fn: () => void, re: RegExp) =>
    assert.throws(fn, (err: unknown) => {
      assert.ok(err instanceof CacheroachError);
      assert.equal(err.code, "ERR_NETWORK_POLICY");
      assert.match(err.message, /^fetch refused by network policy: /);
      assert.match(err.message, /the operator can allow private targets with --fetch-allow-private$/);
      assert.match(err.message, re);
      return true;
    });

  test("refusals say what the address is and how it was reached", () => {
    refused(
      () => strict.checkAddress("127.0.0.1", "127.0.0.1", "literal"),
      /: 127\.0\.0\.1 is a loopback address;/,
    );
    refused(
      () => strict.checkAddress("::ffff:7f00:1", "::ffff:7f00:1", "literal"),
      /\[::ffff:7f00:1\] is a loopback address, carrying IPv4 127\.0\.0\.1;/,
    );
    refused(
      () => strict.checkAddress("internal.example", "10.1.2.3", "dns"),
      /internal\.example resolves to a private address \(10\.1\.2\.3\)/,
    );
    refused(
      () => strict.checkAddress("public.example", "127.0.0.1", "socket"),
      /public\.example connected to a loopback address \(127\.0\.0\.1\)/,
    );
    refused(
      () => strict.checkAddress("169.254.169.254", "169.254.169.254", "literal"),
      /link-local address \(cloud metadata service\)/,
    );
    refused(() => strict.checkHostname("localhost"), /localhost resolves to a loopback address/);
    refused(() => strict.checkHostname("app.localhost."), /app\.localhost\. resolves to a loopback address/);
  });

  test("public addresses and ordinary names pass", () => {
    strict.checkAddress("example.com", "93.184.216.34", "dns");
    strict.checkAddress("example.com", "2606:2800:220:1:248:1893:25c8:1946", "socket");
    strict.checkHostname("example.com");
  });

  test("an operator who allows private targets allows everything", () => {
    assert.equal(open.allowPrivate, true);
    for (const [address] of NON_PUBLIC) open.checkAddress(address, address, "literal");
    open.checkHostname("localhost");
  });
});
