/**
 * Client-side checks of remote paths, so that mistakes get a clear message before any RPC. The
 * server checks again (it is the authority); these rules mirror common.proto.
 */
import { existsSync } from "node:fs";
import { UserError } from "./errors.js";
import { shellWord } from "./invocation.js";

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
export function checkRemoteDir(
  dir: string,
  usage = "file put",
  rest = "<local>...",
  typed?: readonly string[],
): string {
  if (!dir.startsWith("/") || !dir.endsWith("/")) {
    throw new UserError(
      `remote directory "${dir}" must be absolute and end with "/"`,
      undefined,
      remoteDirHints(dir, usage, rest, typed),
    );
  }
  if (dir !== "/") checkRemotePath(dir.slice(0, -1), "remote directory");
  return dir;
}

/**
 * Hints for a remote directory argument that is not one, phrased with what the user typed (`typed`:
 * the arguments after it, when the command passes them): arguments in the wrong order ("file put
 * hello.txt /x/") are shown reordered; a file path ("/x/renamed.txt") gets both readings.
 */
export function remoteDirHints(
  dir: string,
  usage: string,
  rest: string,
  typed?: readonly string[],
): string[] {
  const q = shellWord;
  const others = typed && typed.length > 0 ? typed.map(q).join(" ") : rest;
  if (!dir.startsWith("/")) {
    // A remote directory among the other arguments ("/x/"): they came in the wrong order. (An
    // absolute name without the final "/" may as well be a local file: not taken for one.)
    const remote = typed?.find((t) => t.startsWith("/") && t.endsWith("/"));
    if (remote !== undefined && typed) {
      const locals = [dir, ...typed.filter((t) => t !== remote)].map(q).join(" ");
      return [`the remote path comes first: cacheroach ${usage} ${q(remote)} ${locals}`];
    }
    // One remote file name after a local one ("file put hello.txt /x/renamed.txt"): the two came
    // in the wrong order, unless that absolute name is a local file (then the first word may be a
    // remote directory typed without its slashes). `file fetch` stores under the URL's name, so
    // its remote directory is the file name's parent.
    const only = typed?.length === 1 ? typed[0]! : undefined;
    if (only?.startsWith("/") && !only.endsWith("/") && !existsSync(only)) {
      const remote = usage === "file fetch" ? only.slice(0, only.lastIndexOf("/") + 1) : only;
      return [`the remote path comes first: cacheroach ${usage} ${q(remote)} ${q(dir)}`];
    }
    // Either a remote directory typed without its slashes, or a local name typed first.
    const fixed = `/${dir.replace(/^\/+|\/+$/g, "")}/`;
    const locals = [dir, ...(typed ?? [])].map(q).join(" ");
    return [
      `a remote directory is absolute and ends with "/": cacheroach ${usage} ${q(fixed)} ${others}`,
      `if ${q(dir)} is a local name, the remote directory comes first: cacheroach ${usage} /<dir>/ ${locals}`,
    ];
  }
  const parent = dir.slice(0, dir.lastIndexOf("/") + 1);
  return [
    `into the directory ${dir}/: cacheroach ${usage} ${q(`${dir}/`)} ${others}`,
    `into ${parent} (keeping the local name): cacheroach ${usage} ${q(parent)} ${others}`,
  ];
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
