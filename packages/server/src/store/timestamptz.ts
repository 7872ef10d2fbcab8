import pg from "pg";

const parseGeneral = pg.types.getTypeParser(pg.types.builtins.TIMESTAMPTZ, "text") as (s: string) => Date;

/**
 * Parses a TIMESTAMPTZ in its text output form, as pg's default parser (postgres-date) would, but
 * about ten times faster (no regular expressions, no Date.UTC): with pg's parser the timestamps
 * took about a quarter of a 1000-row listing query. Handles the ISO form both databases print,
 * "YYYY-MM-DD HH:MM:SS[.ffffff]±HH[:MM[:SS]]" (PostgreSQL "+00", CockroachDB "+00:00"), with a
 * year of 1000–9999; anything else (BC, infinity, other years or DateStyles) goes to pg's parser.
 * Sub-millisecond digits are truncated, as postgres-date does.
 */
export function parseTimestamptz(s: string): Date {
  const ms = fastParse(s);
  return ms === undefined ? parseGeneral(s) : new Date(ms);
}

function fastParse(s: string): number | undefined {
  const n = s.length;
  if (n < 22 || s.charCodeAt(4) !== 45 || s.charCodeAt(7) !== 45 || s.charCodeAt(10) !== 32) return undefined;
  if (s.charCodeAt(13) !== 58 || s.charCodeAt(16) !== 58) return undefined;
  const year = digits(s, 0, 4);
  const month = digits(s, 5, 2);
  const day = digits(s, 8, 2);
  const hour = digits(s, 11, 2);
  const minute = digits(s, 14, 2);
  const second = digits(s, 17, 2);
  if (year < 1000 || month < 0 || day < 0 || hour < 0 || minute < 0 || second < 0) return undefined;
  let i = 19;
  let ms = 0;
  if (s.charCodeAt(i) === 46) {
    i++;
    const first = i;
    for (let c = s.charCodeAt(i); c >= 48 && c <= 57; c = s.charCodeAt(++i)) {
      if (i - first < 3) ms = ms * 10 + (c - 48);
    }
    if (i === first) return undefined;
    for (let k = i - first; k < 3; k++) ms *= 10;
  }
  const sign = s.charCodeAt(i);
  if (sign !== 43 && sign !== 45) return undefined;
  const oh = digits(s, i + 1, 2);
  if (oh < 0) return undefined;
  i += 3;
  let offset = oh * 3600;
  if (i < n) {
    const om = colonDigits(s, i);
    if (om < 0) return undefined;
    offset += om * 60;
    i += 3;
  }
  if (i < n) {
    const os = colonDigits(s, i);
    if (os < 0) return undefined;
    offset += os;
    i += 3;
  }
  if (i !== n) return undefined;
  if (month < 1 || month > 12 || day < 1 || day > 31) return undefined;
  const local = (((daysFromCivil(year, month, day) * 24 + hour) * 60 + minute) * 60 + second) * 1000 + ms;
  return local - (sign === 43 ? offset : -offset) * 1000;
}

/**
 * Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil): the same
 * calendar as Date.UTC, in integer arithmetic, which is several times faster.
 */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146_097 + doe - 719_468;
}

/** The decimal number in s[at, at+len), or -1 when any character there is not a digit. */
function digits(s: string, at: number, len: number): number {
  let v = 0;
  for (let i = at; i < at + len; i++) {
    const c = s.charCodeAt(i);
    if (!(c >= 48 && c <= 57)) return -1; // also NaN past the end
    v = v * 10 + (c - 48);
  }
  return v;
}

/** The two digits after a ":" at s[at], or -1. */
function colonDigits(s: string, at: number): number {
  return s.charCodeAt(at) === 58 ? digits(s, at + 1, 2) : -1;
}
