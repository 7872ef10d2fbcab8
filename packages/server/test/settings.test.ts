/** The settings table: precedence, units, validation naming the source, config files, redaction. */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ConfigError, resolveConfig } from "../src/config.js";
import { MIN_CONNECTIONS } from "../src/db/db.js";
import {
  describeSettings,
  parseDuration,
  parseSize,
  printableSettings,
  readConfigFile,
  resolveSettings,
  SETTINGS,
  SettingsError,
  settingsToOptions,
} from "../src/settings.js";

const file = (values: Record<string, unknown>) => ({ path: "server.yaml", values });

test("precedence is flag > environment > file > default, and each value says where it came from", () => {
  const r = resolveSettings({
    flags: { "max-connections": "30" },
    env: { CACHEROACH_MAX_CONNECTIONS: "25", CACHEROACH_CACHE_SIZE: "1GiB" },
    file: file({ "max-connections": 40, "cache-size": "2GiB", "chunk-size": "1MiB" }),
  });
  assert.equal(r.values.get("max-connections"), 30);
  assert.equal(r.sources.get("max-connections"), "flag");
  assert.equal(r.values.get("cache-size"), 1024 ** 3);
  assert.equal(r.sources.get("cache-size"), "env");
  assert.equal(r.values.get("chunk-size"), 1024 ** 2);
  assert.equal(r.sources.get("chunk-size"), "file");
  assert.equal(r.values.get("bind"), "127.0.0.1:13013");
  assert.equal(r.sources.get("bind"), "default");
  assert.equal(r.values.has("connect"), false, "a setting without a default and not given stays unset");
});

test("sizes and durations take units; durations become the option's unit", () => {
  assert.equal(parseSize("65536"), 65536);
  assert.equal(parseSize("512KiB"), 512 * 1024);
  assert.equal(parseSize("1.5 GiB"), 1.5 * 1024 ** 3);
  assert.equal(parseSize("10MB"), 10_000_000);
  for (const bad of ["", "12 parsecs", "-1", "1e9", "GiB"]) assert.equal(parseSize(bad), undefined, bad);
  assert.equal(parseDuration("500ms"), 500);
  assert.equal(parseDuration("1h30m"), 5_400_000);
  assert.equal(parseDuration("7d"), 7 * 86_400_000);
  for (const bad of ["", "30", "5 minutes", "-1s", "s", "00", "0.5"])
    assert.equal(parseDuration(bad), undefined, bad);
  // Zero needs no unit: the help of --gc-interval says "0 turns the schedule off".
  assert.equal(parseDuration("0"), 0);
  assert.equal(
    settingsToOptions(resolveSettings({ flags: { "gc-interval": "0" }, env: {} })).gcIntervalMs,
    0,
  );
  assert.equal(
    settingsToOptions(resolveSettings({ flags: {}, env: {}, file: file({ "scrub-interval": 0 }) }))
      .scrubIntervalMs,
    0,
  );
  const options = settingsToOptions(
    resolveSettings({ flags: { "upload-ttl": "2h", "fetch-timeout": "90s" }, env: {} }),
  );
  assert.equal(options.uploadTtlSeconds, 7200);
  assert.equal(options.fetchTimeoutMs, 90_000);
});

test("a bad value is refused naming its source and key, whichever source it came from", () => {
  const cases: [Parameters<typeof resolveSettings>[0], RegExp][] = [
    [{ flags: { "chunk-size": "12" }, env: {} }, /^--chunk-size: must be at least 64KiB \(got "12"\)$/],
    [
      { flags: {}, env: { CACHEROACH_MAX_CONNECTIONS: "many" } },
      /^CACHEROACH_MAX_CONNECTIONS: must be a whole number/,
    ],
    [
      { flags: {}, env: {}, file: file({ "max-connections": 1 }) },
      /^server.yaml: max-connections: must be at least 2$/,
    ],
    [
      { flags: {}, env: {}, file: file({ "fetch-timeout": 300 }) },
      /fetch-timeout: must be a duration with a unit/,
    ],
    [{ flags: {}, env: { CACHEROACH_FETCH_ALLOW_PRIVATE: "maybe" } }, /must be true or false/],
    [{ flags: { "log-level": "loud" }, env: {} }, /--log-level: must be one of silent, fatal/],
    [{ flags: { bind: "13013" }, env: {} }, /--bind: must be host:port/],
    [{ flags: { connect: "mysql://x" }, env: {} }, /--connect: must start with postgres:\/\//],
    [{ flags: {}, env: {}, file: file({ "public-url": 42 }) }, /public-url: must be text/],
  ];
  for (const [src, why] of cases)
    assert.throws(
      () => resolveSettings(src),
      (e: unknown) => e instanceof SettingsError && why.test(e.message),
      String(why),
    );
});

test("an unknown config-file key is refused, with the nearest known key suggested", () => {
  assert.throws(
    () => resolveSettings({ flags: {}, env: {}, file: file({ "max-conections": 4 }) }),
    /server.yaml: unknown setting "max-conections" \(did you mean "max-connections"\?\)/,
  );
  assert.throws(
    () => resolveSettings({ flags: {}, env: {}, file: file({ colour: "blue" }) }),
    /unknown setting "colour"$/,
  );
});

test("config files: YAML mappings only, errors name the file and line", async () => {
  const dir = await mkdtemp(join(tmpdir(), "settings-"));
  try {
    const write = async (name: string, text: string) => {
      await writeFile(join(dir, name), text);
      return join(dir, name);
    };
    assert.deepEqual(await readConfigFile(await write("ok.yaml", "max-connections: 40\n# a comment\n")), {
      "max-connections": 40,
    });
    assert.deepEqual(await readConfigFile(await write("empty.yaml", "")), {});
    await assert.rejects(readConfigFile(await write("dup.yaml", "a: 1\na: 2\n")), /dup.yaml:2: .*[Uu]nique/);
    await assert.rejects(
      readConfigFile(await write("list.yaml", "- a\n- b\n")),
      /must be a mapping of settings/,
    );
    await assert.rejects(readConfigFile(join(dir, "missing.yaml")), /missing.yaml: no such file/);
  } finally {
    await rm(dir, { recursive: true });
  }
});

test("--print-config shows sizes and durations in words, redacts secrets, and reads back as a config file", async () => {
  const resolved = resolveSettings({
    flags: {
      connect: "postgres://app:hunter2@db:5432/files",
      "signing-key": ["c2VjcmV0LWtleQ==", "@/run/key"],
    },
    env: {},
  });
  const shown = describeSettings(resolved);
  assert.equal(shown.connect?.value, "postgres://app:redacted@db:5432/files");
  assert.deepEqual(shown["signing-key"]?.value, ["<redacted>", "@/run/key"]);
  assert.equal(shown["chunk-size"]?.value, "512KiB");
  assert.equal(shown["upload-ttl"]?.value, "1d");
  const text = await printableSettings(resolved);
  assert.ok(!text.includes("hunter2") && !text.includes("c2VjcmV0"), text);
  const dir = await mkdtemp(join(tmpdir(), "settings-"));
  try {
    const path = join(dir, "printed.yaml");
    const plain = resolveSettings({ flags: { "cache-size": "3GiB", "fetch-timeout": "90s" }, env: {} });
    await writeFile(path, await printableSettings(plain));
    const again = resolveSettings({ flags: {}, env: {}, file: { path, values: await readConfigFile(path) } });
    assert.deepEqual([...again.values], [...plain.values]);
  } finally {
    await rm(dir, { recursive: true });
  }
});

test("programmatic options go through the same schemas, and the defaults are the table's", () => {
  const c = resolveConfig({});
  assert.equal(c.chunkSize, 512 * 1024);
  assert.equal(c.uploadTtlSeconds, 24 * 3600);
  assert.equal(c.maxConnections, 20);
  assert.equal(c.chunkWriteConcurrency, 4);
  assert.throws(
    () => resolveConfig({ chunkSize: 1000 }),
    (e: unknown) => e instanceof ConfigError && /^chunk-size 1000 must be at least 64KiB$/.test(e.message),
  );
  assert.throws(() => resolveConfig({ maxConnections: 1 }), ConfigError);
  assert.throws(() => resolveConfig({ logLevel: "loud" }), ConfigError);
  assert.throws(() => resolveConfig({ bind: "nope" }), ConfigError);
  assert.equal(resolveConfig({ uploadTtlSeconds: 2 }).uploadTtlSeconds, 2);
  const maxConnections = SETTINGS.find((s) => s.key === "max-connections");
  assert.ok(maxConnections?.schema.safeParse(MIN_CONNECTIONS).success);
  assert.ok(!maxConnections?.schema.safeParse(MIN_CONNECTIONS - 1).success);
});

test("every setting has a CACHEROACH_ variable, help text, and a default that passes its own schema", () => {
  const envs = new Set<string>();
  for (const s of SETTINGS) {
    assert.match(s.env, /^CACHEROACH_[A-Z_]+$/, s.key);
    assert.ok(!envs.has(s.env), `${s.env} used twice`);
    envs.add(s.env);
    assert.ok(s.summary.length > 10, s.key);
    if (s.default !== undefined) assert.ok(s.schema.safeParse(s.default).success, `${s.key} default`);
  }
});

test("docs/operations.md lists every setting with its environment variable", async () => {
  const { readFile } = await import("node:fs/promises");
  const doc = await readFile(new URL("../../../docs/operations.md", import.meta.url), "utf8");
  for (const s of SETTINGS) assert.match(doc, new RegExp(`\\| \`${s.key}\` \\| \`${s.env}\``), s.key);
});
