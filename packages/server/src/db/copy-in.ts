import type { Socket } from "node:net";
import type pg from "pg";

/** One row of a binary COPY FROM: each field's bytes, already in PostgreSQL's binary form. */
export type CopyInRow = readonly Buffer[];

/** `PGCOPY\n\377\r\n\0`, flags 0, no header extension. */
const HEADER = Buffer.concat([Buffer.from("PGCOPY\n\xff\r\n\0", "latin1"), Buffer.alloc(8)]);
/** Field count -1: the end of the tuples. */
const TRAILER = Buffer.from([0xff, 0xff]);
/** CopyDone. */
const COPY_DONE = Buffer.from([0x63, 0, 0, 0, 4]);
/** Fields up to this size are copied into the message header; larger ones are written by reference. */
const INLINE_BYTES = 4096;

/** What a simple query of several statements reports: each statement's command tag, in order. */
export type CommandTags = string[];

/**
 * Binary-format `COPY … FROM STDIN` (possibly followed, in the same simple query, by more
 * statements: PostgreSQL runs a multi-statement simple query as one implicit transaction) through
 * pg's Submittable hook. The rows go to the socket as CopyData messages whose large fields are
 * written by reference, never copied into a message buffer: pg's Bind assembly copies each
 * parameter two to three times, which was a large part of the server's CPU per ingested MiB.
 *
 * If PostgreSQL fails the COPY midway it answers ErrorResponse at once and drops the CopyData
 * still to come, so the whole stream is written without waiting; the statement's error is what
 * the caller sees, and the connection is usable afterwards.
 */
export class BinaryCopyIn implements pg.Submittable {
  /** Set by the caller; called exactly once. */
  callback: ((err: Error | undefined, tags?: CommandTags) => void) | undefined;
  private readonly tags: CommandTags = [];
  private failure: Error | undefined;
  private sent = false;
  private finished = false;

  constructor(
    private readonly text: string,
    private readonly rows: readonly CopyInRow[],
  ) {}

  submit(connection: pg.Connection): void {
    connection.query(this.text); // simple-query protocol: COPY takes no bind parameters
  }

  handleCopyInResponse(connection: pg.Connection): void {
    if (this.sent) {
      // A second COPY FROM in the same query text: not what this class writes.
      (connection as unknown as { sendCopyFail(msg: string): void }).sendCopyFail("one COPY per query");
      this.failure ??= new Error("COPY: more than one COPY FROM in one query");
      return;
    }
    this.sent = true;
    const socket = (connection as unknown as { stream: Socket }).stream;
    // Corked, the pieces leave in one writev; nothing is copied but the small headers.
    socket.cork();
    try {
      writeCopyStream(socket, this.rows);
      socket.write(COPY_DONE);
    } finally {
      socket.uncork();
    }
  }

  handleCommandComplete(msg: { text?: string }): void {
    this.tags.push(msg.text ?? "");
  }

  handleReadyForQuery(): void {
    if (!this.failure && !this.sent) this.failure = new Error("COPY: the statement did not ask for data");
    this.finish(this.failure, this.tags);
  }

  handleError(err: Error): void {
    this.finish(err);
  }

  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {
    this.failure ??= new Error("COPY: the statement sent data (COPY TO?)");
  }

  private finish(err: Error | undefined, tags?: CommandTags): void {
    if (this.finished) return;
    this.finished = true;
    this.callback?.(err, err ? undefined : tags);
  }
}

/**
 * Writes the binary COPY stream of `rows` (header, tuples, trailer) as CopyData messages: one
 * message per row, its small fields and length words copied into the message's first piece and
 * each large field written after it as it is.
 */
function writeCopyStream(socket: Socket, rows: readonly CopyInRow[]): void {
  let first = true;
  for (const row of rows) {
    // Message header (5) + [stream header] + field count (2) + per field a length (4) + small data.
    let head = 5 + (first ? HEADER.length : 0) + 2;
    let total = (first ? HEADER.length : 0) + 2;
    for (const f of row) {
      head += 4 + (f.length <= INLINE_BYTES ? f.length : 0);
      total += 4 + f.length;
    }
    const buf = Buffer.allocUnsafe(head);
    buf[0] = 0x64; // 'd'
    buf.writeInt32BE(4 + total, 1);
    let at = 5;
    if (first) {
      HEADER.copy(buf, at);
      at += HEADER.length;
      first = false;
    }
    buf.writeInt16BE(row.length, at);
    at += 2;
    // Fields in order: a large one ends the current piece, is written by reference, and a new
    // piece (of the remaining small fields) follows.
    let pieceStart = 0;
    for (const f of row) {
      buf.writeInt32BE(f.length, at);
      at += 4;
      if (f.length <= INLINE_BYTES) {
        f.copy(buf, at);
        at += f.length;
      } else {
        socket.write(buf.subarray(pieceStart, at));
        socket.write(f);
        pieceStart = at;
      }
    }
    if (at > pieceStart) socket.write(buf.subarray(pieceStart, at));
  }
  // The trailer (and the stream header, for no rows) in a message of its own.
  const tail = Buffer.allocUnsafe(5 + (first ? HEADER.length : 0) + 2);
  tail[0] = 0x64;
  tail.writeInt32BE(tail.length - 1, 1);
  let at = 5;
  if (first) {
    HEADER.copy(tail, at);
    at += HEADER.length;
  }
  TRAILER.copy(tail, at);
  socket.write(tail);
}

/** Runs `text` (a COPY FROM STDIN in binary format, then optionally more statements) on `client`. */
export function copyInBinary(
  client: pg.ClientBase,
  text: string,
  rows: readonly CopyInRow[],
): Promise<CommandTags> {
  return new Promise((resolve, reject) => {
    const q = new BinaryCopyIn(text, rows);
    q.callback = (err, tags) => (err ? reject(err) : resolve(tags!));
    client.query(q);
  });
}

/** A UUID's 16 bytes (binary COPY form), from its canonical text. */
export function uuidBytes(id: string): Buffer {
  const hex = id.replace(/-/g, "");
  if (!/^[0-9a-f]{32}$/i.test(hex)) throw new Error("not a UUID");
  return Buffer.from(hex, "hex");
}
