import { createHmac, timingSafeEqual } from "node:crypto";
import { CacheroachError } from "../errors.js";

/** What an upload state asserts. The client sees only opaque signed bytes. */
export interface UploadState {
  readonly uploadId: string;
  readonly tenantId: string;
  readonly path: string;
  /** Bytes received so far. */
  readonly offset: number;
  /** Unix seconds after which the state is refused. Fixed at Begin so retries are identical. */
  readonly deadline: number;
  /** Chunk size the upload is cut at. */
  readonly chunkSize: number;
  /** True once a short (last) transfer arrived: only Commit may follow. */
  readonly final: boolean;
}

const VERSION = 1;
const MAC_LENGTH = 32;
/** Domain separation: the signing keys also sign JWTs, so states use a derived key. */
const PURPOSE = "cacheroach upload-state v1";

/**
 * Encodes, signs and verifies upload states: a fixed binary layout followed by an
 * HMAC-SHA256 under a key derived from the server's signing keys (the first signs, all verify,
 * compared in constant time). Encoding is deterministic, so the same input state and data give
 * byte-identical output states.
 */
export class UploadStateCodec {
  private readonly keys: Buffer[];

  constructor(signingKeys: readonly Uint8Array[]) {
    if (signingKeys.length === 0) throw new Error("at least one signing key is required");
    this.keys = signingKeys.map((k) => createHmac("sha256", k).update(PURPOSE).digest());
  }

  /** Serialises and signs a state. */
  encode(s: UploadState): Buffer {
    const path = Buffer.from(s.path, "utf8");
    const body = Buffer.alloc(1 + 16 + 16 + 8 + 8 + 4 + 1 + 2 + path.length);
    let o = body.writeUInt8(VERSION, 0);
    o += Buffer.from(s.uploadId.replaceAll("-", ""), "hex").copy(body, o);
    o += Buffer.from(s.tenantId.replaceAll("-", ""), "hex").copy(body, o);
    o = body.writeBigUInt64BE(BigInt(s.offset), o);
    o = body.writeBigUInt64BE(BigInt(s.deadline), o);
    o = body.writeUInt32BE(s.chunkSize, o);
    o = body.writeUInt8(s.final ? 1 : 0, o);
    o = body.writeUInt16BE(path.length, o);
    path.copy(body, o);
    return Buffer.concat([body, this.mac(this.keys[0]!, body)]);
  }

  /**
   * Verifies and decodes a state. Tampered, truncated or foreign bytes are ERR_BAD_UPLOAD_STATE;
   * a valid but expired state is ERR_UPLOAD_EXPIRED.
   */
  decode(bytes: Uint8Array, nowSeconds: number = Math.floor(Date.now() / 1000)): UploadState {
    const bad = () =>
      new CacheroachError(
        "ERR_BAD_UPLOAD_STATE",
        "upload state is invalid (tampered, truncated or from another server)",
      );
    const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (buf.length < 56 + MAC_LENGTH || buf[0] !== VERSION) throw bad();
    const body = buf.subarray(0, buf.length - MAC_LENGTH);
    const mac = buf.subarray(buf.length - MAC_LENGTH);
    if (!this.keys.some((k) => timingSafeEqual(this.mac(k, body), mac))) throw bad();
    const hex = (b: Buffer) => {
      const h = b.toString("hex");
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
    };
    const pathLen = body.readUInt16BE(54);
    if (body.length !== 56 + pathLen) throw bad();
    const state: UploadState = {
      uploadId: hex(body.subarray(1, 17)),
      tenantId: hex(body.subarray(17, 33)),
      offset: Number(body.readBigUInt64BE(33)),
      deadline: Number(body.readBigUInt64BE(41)),
      chunkSize: body.readUInt32BE(49),
      final: body.readUInt8(53) === 1,
      path: body.subarray(56).toString("utf8"),
    };
    if (state.deadline < nowSeconds) {
      throw new CacheroachError("ERR_UPLOAD_EXPIRED", "upload state has expired; begin the upload again");
    }
    return state;
  }

  private mac(key: Buffer, body: Buffer): Buffer {
    return createHmac("sha256", key).update(body).digest();
  }
}
