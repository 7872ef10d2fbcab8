/**
 * Bytes travel over plain HTTP GET through signed URLs (Files.Retrieve): read-only, one file, an
 * expiry, revoked with the session. Downloads are streamed to disk by the browser itself (never
 * held in this page), and previews load from the same kind of URL.
 */
import type { FileMeta } from "@cacheroach/proto";
import type { Api } from "../api/client.js";
import { HttpError } from "../api/errors.js";

/** A signed URL: absolute, and when it stops working. */
export interface SignedLink {
  readonly url: string;
  readonly expiresAt: Date | undefined;
}

/** Mints a signed URL for `file` (its exact version when `pinVersion`) valid for `seconds`. */
export async function signedLink(
  api: Api,
  file: FileMeta,
  seconds: number,
  pinVersion: boolean,
): Promise<SignedLink> {
  const r = await api.files.retrieve({
    tenantId: file.tenantId,
    path: file.path,
    version: pinVersion ? file.version : 0n,
    validFor: { seconds: BigInt(seconds) },
  });
  const e = r.expiresAt;
  return {
    url: new URL(r.getUri, location.origin).toString(),
    expiresAt: e ? new Date(Number(e.seconds) * 1000) : undefined,
  };
}

/** Starts the browser's download of `file` (this version) through a short-lived signed URL. */
export async function download(api: Api, file: FileMeta): Promise<void> {
  const { url } = await signedLink(api, file, 120, true);
  const a = document.createElement("a");
  a.href = url;
  a.download = file.path.slice(file.path.lastIndexOf("/") + 1);
  a.rel = "noreferrer";
  document.body.append(a);
  a.click();
  a.remove();
}

/** The first `max` bytes of `file` as text (for a preview), and whether there was more. */
export async function previewText(
  api: Api,
  file: FileMeta,
  max: number,
): Promise<{ text: string; more: boolean }> {
  const { url } = await signedLink(api, file, 120, true);
  const res = await fetch(url, { headers: { range: `bytes=0-${max - 1}` }, credentials: "omit" });
  if (!res.ok) throw await HttpError.of(res);
  const body = new Uint8Array(await res.arrayBuffer());
  return { text: new TextDecoder("utf-8").decode(body), more: file.size > BigInt(body.length) };
}

const TEXT_TYPES = /^(text\/|application\/(json|xml|javascript|x-yaml|yaml|toml|x-sh)\b)|\+(json|xml)\b/;
const TEXT_EXT =
  /\.(txt|md|markdown|json|csv|tsv|log|ya?ml|toml|ini|conf|cfg|xml|html?|css|[cm]?[jt]sx?|py|go|rs|java|c|h|cpp|sh|sql|proto)$/i;
const IMAGE_TYPES = /^image\/(png|jpeg|gif|webp|avif|bmp|svg\+xml)$/;
const IMAGE_EXT = /\.(png|jpe?g|gif|webp|avif|bmp|svg)$/i;

/** How `file` can be previewed inline, if at all. */
export function previewKind(file: FileMeta): "text" | "image" | undefined {
  const t = file.contentType.split(";")[0]!.trim().toLowerCase();
  if (t ? IMAGE_TYPES.test(t) : IMAGE_EXT.test(file.path)) return "image";
  if (t ? TEXT_TYPES.test(t) : TEXT_EXT.test(file.path)) return "text";
  return undefined;
}
