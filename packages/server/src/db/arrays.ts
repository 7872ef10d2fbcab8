/**
 * Array parameters and batches: every statement that takes many rows takes them as arrays
 * (`unnest($2::BYTEA[], $3::INT8[], …)`), so its text is the same whatever the row count, and
 * long inputs go in fixed-size batches through {@link inBatches}.
 */

/** PostgreSQL's type OID of bytea, the element type of a binary bytea[]. */
const BYTEA_OID = 17;

/**
 * A `BYTEA[]` parameter in PostgreSQL's binary array format (one dimension, lower bound 1, no
 * NULLs). pg sends a Buffer parameter in binary, so the bytes travel as they are; an array of
 * Buffers would go as an array literal of hex strings, which measured 2–5× slower for chunk data
 * (256 × 4 KiB and 1 × 512 KiB chunks) than the binary form, and slower than one placeholder per
 * value. The statement must cast the parameter (`$2::BYTEA[]`) so the database knows its type.
 */
export function byteaArray(items: readonly Buffer[]): Buffer {
  let total = 20;
  for (const b of items) total += 4 + b.length;
  const out = Buffer.allocUnsafe(total);
  out.writeInt32BE(1, 0); // dimensions
  out.writeInt32BE(0, 4); // no NULLs
  out.writeInt32BE(BYTEA_OID, 8);
  out.writeInt32BE(items.length, 12);
  out.writeInt32BE(1, 16); // lower bound
  let at = 20;
  for (const b of items) {
    out.writeInt32BE(b.length, at);
    b.copy(out, at + 4);
    at += 4 + b.length;
  }
  return out;
}

/**
 * Runs `fn` on consecutive slices of `items` of at most `size`, one after another, and returns
 * what the calls returned, concatenated in order. No call for an empty input.
 */
export async function inBatches<T, R = never>(
  items: readonly T[],
  size: number,
  fn: (batch: readonly T[]) => Promise<readonly R[] | undefined>,
): Promise<R[]> {
  if (!Number.isInteger(size) || size < 1)
    throw new Error(`batch size must be a positive integer, not ${size}`);
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) {
    const r = await fn(i === 0 && items.length <= size ? items : items.slice(i, i + size));
    if (r) for (const x of r) out.push(x);
  }
  return out;
}
