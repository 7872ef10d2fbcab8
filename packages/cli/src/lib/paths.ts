/**
 * Client-side checks of remote paths, so that mistakes get a clear message before any RPC. The
 * server checks again (it is the authority); these rules mirror common.proto.
 */
import { UserError } from "./errors.js";

const MAX_PATH_BYTES = 1024;
const MAX_SEGMENT_BYTES = 255;

/** Why `path` is not a valid remote file path, or undefined when it is valid. */
export function remotePathProblem(path: string): string | undefined {
  if (!path.startsWith("/")) return "must be absolute (start with /)";
  if (path === "/") return "must name a file, not the root";
  if (path.includes("\0")) return "must not contain NUL";
  if (Buffer.byteLength(path, "utf8") > MAX_PATH_BYTES) return `must be at most ${MAX_PATH_BYTES} bytes`;
  const segments = path.slice(1).split("/");
  for (const seg of segments) {
    if (seg === "")
      return path.endsWith("/") ? "must not end with /" : "must not contain empty segments (//)";
    if (seg === "." || seg === "..") return `must not contain "${seg}" segments`;
    if (Buffer.byteLength(seg, "utf8") > MAX_SEGMENT_BYTES) {
      return `segments must be at most ${MAX_SEGMENT_BYTES} bytes`;
    }
  }
  return undefined;
}

/** Throws a usage error unless `path` is a valid remote file path. */
export function checkRemotePath(path: string, what = "remote path"): string {
  const problem = remotePathProblem(path);
  if (problem) {
    throw new UserError(`${what} "${path}" ${problem}`, undefined, [
      'remote paths look like "/dir/file.txt": absolute, no "..", "." or empty segments',
    ]);
  }
  return path;
}

/**
 * Checks a remote directory given to `file put` or `file fetch`: absolute and ending with "/" (the trailing
 * slash makes it unambiguous that local names are appended to it).
 */
export function checkRemoteDir(dir: string, usage = "file put", rest = "<local>..."): string {
  if (!dir.startsWith("/") || !dir.endsWith("/")) {
    throw new UserError(`remote directory "${dir}" must be absolute and end with "/"`, undefined, [
      `cacheroach ${usage} ${dir.startsWith("/") ? dir : `/${dir}`}${dir.endsWith("/") ? "" : "/"} ${rest}`,
    ]);
  }
  if (dir !== "/") checkRemotePath(dir.slice(0, -1), "remote directory");
  return dir;
}

/** A remote listing prefix: "/" or a valid path (a trailing "/" is allowed and dropped). */
export function checkRemotePrefix(prefix: string): string {
  if (prefix === "" || prefix === "/") return "/";
  const p = prefix.endsWith("/") ? prefix.slice(0, -1) : prefix;
  checkRemotePath(p);
  return p;
}

/** Last segment of a remote path. */
export function remoteBaseName(path: string): string {
  const i = path.lastIndexOf("/");
  return path.slice(i + 1);
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** True for a canonical lower-case UUID. */
export function isUuid(s: string): boolean {
  return UUID_RE.test(s);
}
