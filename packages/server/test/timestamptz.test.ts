import assert from "node:assert/strict";
import { describe, test } from "node:test";
import pg from "pg";
import { parseTimestamptz } from "../src/store/timestamptz.js";

// The listing parses TIMESTAMPTZ text itself; it must agree with pg's default parser everywhere.
const pgParse = pg.types.getTypeParser(pg.types.builtins.TIMESTAMPTZ, "text") as (s: string) => Date;

function same(text: string) {
  assert.equal(parseTimestamptz(text).valueOf(), pgParse(text).valueOf(), text);
}

describe("parseTimestamptz", () => {
  test("agrees with pg's parser on PostgreSQL's and CockroachDB's forms and the odd cases", () => {
    for (const text of [
      "2026-11-23 15:25:43.32484+00",
      "2026-11-23 15:25:43.32484+00:00", // CockroachDB
      "2026-11-23 15:25:43+00",
      "2026-11-23 15:25:43.1+05:30",
      "2026-11-23 15:25:43.999999-11:30",
      "2026-11-23 15:25:43.123456+14",
      "1969-12-31 23:59:59.999-03",
      "1900-01-01 00:00:00+00:09:21", // LMT offsets have seconds
      "1000-02-28 12:00:00.5+00",
      // Handed to pg's parser:
      "0099-01-01 00:00:00+00",
      "0044-03-15 12:00:00+00 BC",
      "2026-03-15 12:00:00+00 BC",
      "12026-01-01 00:00:00+00",
      "infinity",
      "-infinity",
    ])
      same(text);
  });

  test("truncates sub-millisecond digits like pg's parser, for every microsecond value", () => {
    for (let us = 0; us < 1_000_000; us += 997) {
      const frac = String(us).padStart(6, "0").replace(/0+$/, "");
      same(`2026-11-23 15:25:43${frac ? `.${frac}` : ""}+00`);
    }
  });

  test("agrees on PostgreSQL's output in several time zones", async (t) => {
    const url = process.env["PG_TEST_URL"] ?? process.env["DATABASE_URL"];
    if (!url) return t.skip("no PG_TEST_URL");
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      for (const tz of ["UTC", "Asia/Kolkata", "America/St_Johns", "Europe/Paris", "Pacific/Chatham"]) {
        await c.query(`SET TimeZone = '${tz}'`);
        const r = await c.query<{ t: string }>(
          `SELECT t::TEXT AS t FROM (
             SELECT timestamptz '1850-01-01' + i * interval '7 days 3 hours 1.234567 seconds' AS t
               FROM generate_series(0, 2000) AS i) x`,
        );
        for (const { t: text } of r.rows) same(text);
      }
    } finally {
      await c.end();
    }
  });
});
