import type pg from "pg";

/** One row of a binary COPY: a field is its bytes, or null for SQL NULL. */
export type CopyRow = (Buffer | null)[];

/** What a binary COPY must return, and where its bytes go. */
export interface CopyShape {
  /** Columns every tuple must have. */
  readonly fields: number;
  /** Total field bytes accepted, so an unexpected result cannot exhaust memory. */
  readonly maxBytes: number;
  /**
   * Where the next field's `length` bytes go, given the row's earlier fields: a buffer of exactly
   * that length (e.g. part of a larger buffer being assembled, saving a copy), or undefined for a
   * buffer of its own. May throw to reject the result.
   */
  readonly target?: (row: CopyRow, length: number) => Buffer | undefined;
}

/** `PGCOPY\n\377\r\n\0`, the first 11 bytes of every binary COPY stream. */
const SIGNATURE = Buffer.from("PGCOPY\n\xff\r\n\0", "latin1");
/** Signature, flags field and header-extension length. */
const HEADER_BYTES = SIGNATURE.length + 8;

enum State {
  Header,
  SkipExtension,
  FieldCount,
  FieldLength,
  FieldData,
  Done,
}

/**
 * Incremental parser of PostgreSQL's binary COPY format (header, tuples of length-prefixed fields,
 * trailer), fed arbitrary slices of the stream. Each field is copied once, as its bytes arrive,
 * into a buffer of its exact size (its own, or one the shape's target hands out): pg hands out
 * views into its receive buffer, which it reuses for later socket reads, so nothing may be kept by
 * reference. Hand-written: copying each field straight into the caller's buffer, under a byte
 * bound, is what made cold reads cheaper (docs/performance.md, "Cold reads via binary COPY").
 */
export class BinaryCopyParser {
  readonly rows: CopyRow[] = [];
  private state = State.Header;
  /** Bytes of a fixed-size item (header, count, length) split across messages. */
  private carry = Buffer.alloc(0);
  private skip = 0;
  private row: CopyRow = [];
  private fieldsLeft = 0;
  private field: Buffer | undefined;
  private fieldFilled = 0;
  private bytes = 0;

  constructor(private readonly shape: CopyShape) {}

  /** True once the trailer has been read. */
  get done(): boolean {
    return this.state === State.Done;
  }

  /** Consumes the next slice of the stream; throws on anything malformed. */
  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      switch (this.state) {
        case State.Header: {
          const h = this.take(chunk, pos, HEADER_BYTES);
          if (!h) return;
          pos = h.next;
          if (!h.bytes.subarray(0, SIGNATURE.length).equals(SIGNATURE))
            throw new Error("COPY: bad signature");
          // Bits 16–31 flag format changes a reader must not ignore (bit 16: OIDs included).
          if ((h.bytes.readUInt32BE(SIGNATURE.length) & 0xffff0000) !== 0) {
            throw new Error("COPY: unsupported header flags");
          }
          this.skip = h.bytes.readUInt32BE(SIGNATURE.length + 4);
          this.state = this.skip > 0 ? State.SkipExtension : State.FieldCount;
          break;
        }
        case State.SkipExtension: {
          const n = Math.min(this.skip, chunk.length - pos);
          pos += n;
          this.skip -= n;
          if (this.skip === 0) this.state = State.FieldCount;
          break;
        }
        case State.FieldCount: {
          const h = this.take(chunk, pos, 2);
          if (!h) return;
          pos = h.next;
          const count = h.bytes.readInt16BE(0);
          if (count === -1) {
            this.state = State.Done;
          } else if (count !== this.shape.fields) {
            throw new Error(`COPY: tuple has ${count} fields, expected ${this.shape.fields}`);
          } else {
            this.row = [];
            this.fieldsLeft = count;
            this.state = count > 0 ? State.FieldLength : State.FieldCount;
            if (count === 0) this.rows.push(this.row);
          }
          break;
        }
        case State.FieldLength: {
          const h = this.take(chunk, pos, 4);
          if (!h) return;
          pos = h.next;
          const len = h.bytes.readInt32BE(0);
          if (len === -1) {
            this.endField(null);
          } else if (len < 0) {
            throw new Error(`COPY: bad field length ${len}`);
          } else {
            this.bytes += len;
            if (this.bytes > this.shape.maxBytes) {
              throw new Error(`COPY: result exceeds ${this.shape.maxBytes} bytes`);
            }
            const target = this.shape.target?.(this.row, len);
            if (target !== undefined && target.length !== len)
              throw new Error("COPY: target has the wrong size");
            if (len === 0) {
              this.endField(target ?? Buffer.alloc(0));
            } else {
              this.field = target ?? Buffer.allocUnsafe(len);
              this.fieldFilled = 0;
              this.state = State.FieldData;
            }
          }
          break;
        }
        case State.FieldData: {
          const f = this.field!;
          const n = Math.min(f.length - this.fieldFilled, chunk.length - pos);
          chunk.copy(f, this.fieldFilled, pos, pos + n);
          pos += n;
          this.fieldFilled += n;
          if (this.fieldFilled === f.length) {
            this.field = undefined;
            this.endField(f);
          }
          break;
        }
        case State.Done:
          throw new Error("COPY: data after the trailer");
      }
    }
  }

  private endField(value: Buffer | null): void {
    this.row.push(value);
    if (--this.fieldsLeft === 0) {
      this.rows.push(this.row);
      this.state = State.FieldCount;
    } else {
      this.state = State.FieldLength;
    }
  }

  /**
   * The next `n` bytes (carried-over bytes first, then `chunk` from `pos`), valid until the next
   * call; or undefined, having kept the rest of `chunk` for the next one. `next` is where the caller
   * continues in `chunk`.
   */
  private take(chunk: Buffer, pos: number, n: number): { bytes: Buffer; next: number } | undefined {
    const have = this.carry.length;
    const want = n - have;
    if (chunk.length - pos < want) {
      this.carry = Buffer.concat([this.carry, chunk.subarray(pos)]);
      return undefined;
    }
    const bytes =
      have === 0
        ? chunk.subarray(pos, pos + n)
        : Buffer.concat([this.carry, chunk.subarray(pos, pos + want)]);
    this.carry = Buffer.alloc(0);
    return { bytes, next: pos + want };
  }
}

/**
 * A binary-format `COPY (…) TO STDOUT` through pg's Submittable hook (the extension point pg-cursor
 * and pg-query-stream use), so bytea arrives as raw bytes without pg's broken binary result mode
 * and without the text decoding of a normal query. Handlers never throw: a parse failure is kept
 * and reported once the server is ready again, so the connection stays in a known state.
 */
export class BinaryCopyOut implements pg.Submittable {
  /** Set by the caller (or wrapped by pg for query_timeout); called exactly once. */
  callback: ((err: Error | undefined, rows?: CopyRow[]) => void) | undefined;
  private readonly parser: BinaryCopyParser;
  private failure: Error | undefined;
  private reported: number | undefined;
  private finished = false;

  constructor(
    private readonly text: string,
    shape: CopyShape,
  ) {
    this.parser = new BinaryCopyParser(shape);
  }

  submit(connection: pg.Connection): void {
    connection.query(this.text); // simple-query protocol: COPY takes no bind parameters
  }

  handleCopyData(msg: { chunk: Buffer }): void {
    if (this.failure) return;
    try {
      this.parser.push(msg.chunk);
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
    }
  }

  handleCommandComplete(msg: { text?: string }): void {
    const m = /^COPY (\d+)$/.exec(msg.text ?? "");
    this.reported = m ? Number(m[1]) : undefined;
  }

  handleReadyForQuery(): void {
    let err = this.failure;
    if (!err && !this.parser.done) err = new Error("COPY: stream ended before its trailer");
    if (!err && this.reported !== undefined && this.reported !== this.parser.rows.length) {
      err = new Error(`COPY: server sent ${this.reported} rows, parsed ${this.parser.rows.length}`);
    }
    this.finish(err, this.parser.rows);
  }

  handleError(err: Error): void {
    this.finish(err);
  }

  handleCopyInResponse(connection: pg.Connection): void {
    // Not a COPY TO after all: end the server's COPY FROM so the connection is usable again.
    (connection as unknown as { sendCopyFail(msg: string): void }).sendCopyFail("expected COPY TO STDOUT");
    this.failure ??= new Error("COPY: server expected COPY FROM data");
  }

  handleRowDescription(): void {
    this.failure ??= new Error("COPY: statement returned rows instead of COPY data");
  }

  handleDataRow(): void {}

  handleEmptyQuery(): void {
    this.failure ??= new Error("COPY: empty statement");
  }

  handlePortalSuspended(): void {}

  private finish(err: Error | undefined, rows?: CopyRow[]): void {
    if (this.finished) return;
    this.finished = true;
    this.callback?.(err, err ? undefined : rows);
  }
}

/** Runs a binary COPY TO on `client`; resolves with its rows. */
export function copyOutBinary(client: pg.ClientBase, sql: string, shape: CopyShape): Promise<CopyRow[]> {
  return new Promise((resolve, reject) => {
    const q = new BinaryCopyOut(sql, shape);
    q.callback = (err, rows) => (err ? reject(err) : resolve(rows!));
    client.query(q);
  });
}
