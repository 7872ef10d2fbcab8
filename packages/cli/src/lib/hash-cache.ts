/**
 * A local cache of the chunk hashes of large files already uploaded, so uploading an unchanged
 * file again costs a few RPCs instead of reading and hashing every byte (restic and git trust file
 * metadata the same way). An entry is keyed by the file's device and inode and holds the file's
 * size, mtime and ctime (nanoseconds) when it was hashed, the chunk size, and the chunk hashes.
 *
 * When an entry may be trusted:
 * - every recorded field still matches `stat` (ctime changes on every write and cannot be set by
 *   the user, so a rewrite of the same size with a restored mtime still misses);
 * - the file had not changed for {@link SETTLE_NS} before hashing began. File timestamps are
 *   coarse (kernel ticks; 2 s on FAT), so a write in the same tick as the recorded ctime could
 *   leave the timestamps unchanged; a file that settled before hashing cannot be written in that
 *   tick anymore;
 * - `stat` after hashing matched `stat` before it (nothing was written meanwhile).
 *
 * An entry that cannot be trusted is ignored and the file is hashed again. Chunks the server
 * lacks are read from the file and re-hashed by the server, so a wrong entry can never store
 * wrong chunk bytes; the ctime rule is what keeps it from committing stale content.
 */
import { createHash } from "node:crypto";
import { mkdir, open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";

/** Environment variable naming the cache directory (tests, or to move it). */
export const HASH_CACHE_ENV = "CACHEROACH_HASH_CACHE";

/** A file must have been unchanged this long before hashing began for its entry to be kept. */
export const SETTLE_NS = 2_000_000_000n;

/** Entries kept; the least recently written beyond this are removed (64 B per MiB of file each). */
export const MAX_ENTRIES = 4096;

const MAGIC = "cacheroach chunk hashes v1";
const HASH_LENGTH = 32;

/** The metadata an entry is checked against (from `stat(…, { bigint: true })`). */
export interface FileIdentity {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}

/** Identity of an open or named file. */
export function identityOf(s: {
  dev: bigint;
  ino: bigint;
  size: bigint;
  mtimeNs: bigint;
  ctimeNs: bigint;
}): FileIdentity {
  return { dev: s.dev, ino: s.ino, size: s.size, mtimeNs: s.mtimeNs, ctimeNs: s.ctimeNs };
}

/** Whether two identities describe the same, unchanged file. */
export function sameIdentity(a: FileIdentity, b: FileIdentity): boolean {
  return (
    a.dev === b.dev &&
    a.ino === b.ino &&
    a.size === b.size &&
    a.mtimeNs === b.mtimeNs &&
    a.ctimeNs === b.ctimeNs
  );
}

/** Current wall-clock time in nanoseconds (the clock file timestamps come from). */
export function nowNs(): bigint {
  return BigInt(Date.now()) * 1_000_000n;
}

interface EntryHeader {
  magic: string;
  dev: string;
  ino: string;
  size: string;
  mtimeNs: string;
  ctimeNs: string;
  hashedAtNs: string;
  chunkSize: number;
  chunks: number;
}

/** The default directory: `$CACHEROACH_HASH_CACHE`, else `$XDG_CACHE_HOME/cacheroach/chunk-hashes`. */
export function defaultHashCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env[HASH_CACHE_ENV];
  if (explicit) return explicit;
  const base = env["XDG_CACHE_HOME"] || join(homedir(), ".cache");
  return join(base, "cacheroach", "chunk-hashes");
}

/** Chunk hashes of previously hashed files, stored one small file per entry under `dir`. */
export class HashCache {
  private readonly settleNs: bigint;
  private readonly maxEntries: number;

  constructor(
    readonly dir: string,
    options: { settleNs?: bigint; maxEntries?: number } = {},
  ) {
    this.settleNs = options.settleNs ?? SETTLE_NS;
    this.maxEntries = options.maxEntries ?? MAX_ENTRIES;
  }

  private entryPath(id: FileIdentity): string {
    const key = createHash("sha256").update(`${id.dev}:${id.ino}`).digest("hex").slice(0, 32);
    return join(this.dir, key);
  }

  /**
   * The chunk hashes recorded for the file, if the entry exists, matches `id` and `chunkSize`,
   * and may be trusted; otherwise undefined. Never throws (a damaged entry is just a miss).
   */
  async lookup(id: FileIdentity, chunkSize: number): Promise<Buffer[] | undefined> {
    const entry = await this.lookupEntry(id);
    return entry?.chunkSize === chunkSize ? entry.hashes : undefined;
  }

  /** Like {@link lookup}, for whatever chunk size the file was hashed with. */
  async lookupEntry(id: FileIdentity): Promise<{ chunkSize: number; hashes: Buffer[] } | undefined> {
    let raw: Buffer;
    try {
      raw = await readFile(this.entryPath(id));
    } catch {
      return undefined;
    }
    const nl = raw.indexOf(10);
    if (nl < 0) return undefined;
    let h: EntryHeader;
    try {
      h = JSON.parse(raw.subarray(0, nl).toString("utf8")) as EntryHeader;
    } catch {
      return undefined;
    }
    if (h.magic !== MAGIC || !Number.isInteger(h.chunkSize) || h.chunkSize <= 0) return undefined;
    const chunkSize = h.chunkSize;
    const expectedChunks =
      id.size === 0n ? 0 : Number((id.size + BigInt(chunkSize) - 1n) / BigInt(chunkSize));
    if (h.chunks !== expectedChunks || raw.length !== nl + 1 + h.chunks * HASH_LENGTH) return undefined;
    let recorded: FileIdentity;
    let hashedAt: bigint;
    try {
      recorded = {
        dev: BigInt(h.dev),
        ino: BigInt(h.ino),
        size: BigInt(h.size),
        mtimeNs: BigInt(h.mtimeNs),
        ctimeNs: BigInt(h.ctimeNs),
      };
      hashedAt = BigInt(h.hashedAtNs);
    } catch {
      return undefined;
    }
    if (!sameIdentity(recorded, id) || !this.settled(recorded, hashedAt)) return undefined;
    const hashes: Buffer[] = [];
    for (let i = 0; i < h.chunks; i++) {
      const off = nl + 1 + i * HASH_LENGTH;
      hashes.push(raw.subarray(off, off + HASH_LENGTH));
    }
    return { chunkSize, hashes };
  }

  /**
   * Records the chunk hashes of a file hashed from `hashedAtNs` on, whose identity was `before`
   * when hashing began and `after` when it ended. Keeps nothing unless the file was unchanged
   * throughout and had settled before hashing began. Failures to write are ignored: the cache
   * only saves time.
   */
  async record(
    before: FileIdentity,
    after: FileIdentity,
    hashedAtNs: bigint,
    chunkSize: number,
    hashes: readonly Uint8Array[],
  ): Promise<boolean> {
    if (!sameIdentity(before, after) || !this.settled(before, hashedAtNs)) return false;
    const header: EntryHeader = {
      magic: MAGIC,
      dev: String(before.dev),
      ino: String(before.ino),
      size: String(before.size),
      mtimeNs: String(before.mtimeNs),
      ctimeNs: String(before.ctimeNs),
      hashedAtNs: String(hashedAtNs),
      chunkSize,
      chunks: hashes.length,
    };
    const path = this.entryPath(before);
    const tmp = `${path}.${process.pid}.tmp`;
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      const fh = await open(tmp, "w", 0o600);
      try {
        await fh.writeFile(Buffer.concat([Buffer.from(`${JSON.stringify(header)}\n`), ...hashes]));
      } finally {
        await fh.close();
      }
      await rename(tmp, path);
      await this.prune();
      return true;
    } catch {
      await rm(tmp, { force: true }).catch(() => {});
      return false;
    }
  }

  /** Removes the entry of a file (e.g. when its chunks turned out not to match). */
  async forget(id: FileIdentity): Promise<void> {
    await rm(this.entryPath(id), { force: true }).catch(() => {});
  }

  /** The file had not changed for the settle time before hashing began. */
  private settled(id: FileIdentity, hashedAtNs: bigint): boolean {
    const changed = id.ctimeNs > id.mtimeNs ? id.ctimeNs : id.mtimeNs;
    return changed + this.settleNs <= hashedAtNs;
  }

  /** Keeps at most `maxEntries` entries, removing the least recently written. */
  private async prune(): Promise<void> {
    const names = (await readdir(this.dir)).filter((n) => !n.endsWith(".tmp"));
    if (names.length <= this.maxEntries) return;
    const aged = await Promise.all(
      names.map(async (n) => ({
        n,
        t: (await stat(join(this.dir, n)).catch(() => undefined))?.mtimeMs ?? 0,
      })),
    );
    aged.sort((a, b) => a.t - b.t);
    for (const { n } of aged.slice(0, aged.length - this.maxEntries))
      await rm(join(this.dir, n), { force: true });
  }
}
