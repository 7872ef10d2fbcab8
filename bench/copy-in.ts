/**
 * `COPY … FROM STDIN (FORMAT binary)` with `pg`, for the raw ingest limit (row 1a): pg has no COPY
 * FROM of its own (pg-copy-streams is not a dependency), so this is a pg Submittable — the hook
 * the server's BinaryCopyOut uses — that writes the binary COPY framing itself: the header, one
 * tuple per row (field count, then each field's length and bytes), the trailer. Rows come from an
 * async producer; a row's bytes go to the socket as they are produced, and the producer waits for
 * the socket to drain, so at most a few rows per connection are buffered.
 */
import { once } from "node:events";
import type { Socket } from "node:net";
import type pg from "pg";

/** `PGCOPY\n\377\r\n\0`, flags 0, no header extension. */
const HEADER = Buffer.concat([Buffer.from("PGCOPY\n\xff\r\n\0", "latin1"), Buffer.alloc(8)]);
/** Field count -1. */
const TRAILER = Buffer.from([0xff, 0xff]);

/** Hands rows to the COPY: `send` each row's fields (binary wire format), in order. */
export type RowProducer = (send: (fields: readonly Buffer[]) => Promise<void>) => Promise<void>;

/** pg's Connection, as far as COPY FROM needs it. */
interface CopyConnection {
  stream: Socket;
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
  sendCopyFail(msg: string): void;
}

class BinaryCopyIn implements pg.Submittable {
  callback: ((err: Error | undefined, rows?: number) => void) | undefined;
  private failure: Error | undefined;
  private rows = 0;
  private finished = false;

  constructor(
    private readonly text: string,
    private readonly produce: RowProducer,
  ) {}

  submit(connection: pg.Connection): void {
    (connection as unknown as CopyConnection).query(this.text);
  }

  handleCopyInResponse(connection: pg.Connection): void {
    const c = connection as unknown as CopyConnection;
    const send = async (fields: readonly Buffer[]) => {
      const head = Buffer.allocUnsafe(2 + 4 * fields.length);
      head.writeInt16BE(fields.length, 0);
      // Field lengths precede each field: write the small ones inline, big ones as their own message.
      let parts: Buffer[] = [head.subarray(0, 2)];
      fields.forEach((f, i) => {
        const len = head.subarray(2 + 4 * i, 6 + 4 * i);
        len.writeInt32BE(f.length, 0);
        parts.push(len);
        if (f.length < 4096) parts.push(f);
        else {
          c.sendCopyFromChunk(Buffer.concat(parts));
          c.sendCopyFromChunk(f);
          parts = [];
        }
      });
      if (parts.length > 0) c.sendCopyFromChunk(Buffer.concat(parts));
      this.rows++;
      if (c.stream.writableNeedDrain) await once(c.stream, "drain");
    };
    c.sendCopyFromChunk(HEADER);
    this.produce(send).then(
      () => {
        c.sendCopyFromChunk(TRAILER);
        c.endCopyFrom();
      },
      (err: unknown) => {
        this.failure = err instanceof Error ? err : new Error(String(err));
        c.sendCopyFail(this.failure.message);
      },
    );
  }

  handleCommandComplete(msg: { text?: string }): void {
    const m = /^COPY (\d+)$/.exec(msg.text ?? "");
    if (m && Number(m[1]) !== this.rows) {
      this.failure ??= new Error(`COPY: server stored ${m[1]} rows, sent ${this.rows}`);
    }
  }

  handleReadyForQuery(): void {
    this.finish(this.failure);
  }

  handleError(err: Error): void {
    this.finish(this.failure ?? err);
  }

  handleCopyData(): void {}
  handleRowDescription(): void {
    this.failure ??= new Error("COPY: statement returned rows");
  }
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}

  private finish(err: Error | undefined): void {
    if (this.finished) return;
    this.finished = true;
    this.callback?.(err, this.rows);
  }
}

/** Runs `COPY <table> FROM STDIN (FORMAT binary)` on `client` with the produced rows; resolves with their count. */
export function copyInBinary(client: pg.ClientBase, sql: string, produce: RowProducer): Promise<number> {
  return new Promise((resolve, reject) => {
    const q = new BinaryCopyIn(sql, produce);
    q.callback = (err, rows) => (err ? reject(err) : resolve(rows ?? 0));
    client.query(q);
  });
}

/** A UUID's 16 bytes (binary COPY format of `uuid`). */
export function uuidBytes(uuid: string): Buffer {
  return Buffer.from(uuid.replaceAll("-", ""), "hex");
}
