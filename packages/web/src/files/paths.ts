/** Paths as the server spells them: absolute, "/"-separated, no trailing slash (docs/architecture.md). */

/** `dir` joined with a relative path ("a/b.txt"); `dir` is "/" or "/x/y". */
export function join(dir: string, rel: string): string {
  const clean = rel.replace(/^\/+/, "");
  return dir === "/" ? `/${clean}` : `${dir}/${clean}`;
}

/** The last segment of a path. */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** The folder holding `path` ("/" for a top-level one). */
export function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

/** The breadcrumbs of a folder: [{name, path}] from the root down. */
export function crumbs(dir: string): { name: string; path: string }[] {
  const out = [{ name: "/", path: "/" }];
  let acc = "";
  for (const seg of dir.split("/").filter(Boolean)) {
    acc += `/${seg}`;
    out.push({ name: seg, path: acc });
  }
  return out;
}

/** A name not in `taken`: "a.txt" → "a (1).txt", "a (2).txt", … (for "keep both"). */
export function freeName(path: string, taken: ReadonlySet<string>): string {
  const dir = parentOf(path);
  const name = baseName(path);
  const dot = name.lastIndexOf(".");
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
  for (let i = 1; ; i++) {
    const candidate = join(dir, `${stem} (${i})${ext}`);
    if (!taken.has(candidate)) return candidate;
  }
}

/** Why a relative upload path would be refused by the server, or undefined when it is fine. */
export function badSegment(rel: string): string | undefined {
  for (const seg of rel.split("/")) {
    if (seg === "" || seg === "." || seg === "..") return `"${rel}" has an empty, "." or ".." segment`;
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
    if (/[\u0000-\u001f\u007f]/.test(seg)) return `"${rel}" contains a control character`;
    if (new TextEncoder().encode(seg).length > 255) return `a segment of "${rel}" is longer than 255 bytes`;
  }
  return undefined;
}
