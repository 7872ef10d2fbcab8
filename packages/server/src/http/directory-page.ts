import type { DirEntry } from "../store/file-store.js";
import { encodePath } from "./url-path.js";

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);

/** An HTML listing of a directory's immediate children (names escaped, links relative). */
export function directoryPage(dir: string, entries: DirEntry[], truncated: boolean): string {
  const title = esc(`${dir}/`);
  const rows = entries.map((e) => {
    const href = encodePath(e.name) + (e.file ? "" : "/");
    const label = esc(e.name) + (e.file ? "" : "/");
    const size = e.file ? String(e.file.size) : "";
    const when = e.file ? e.file.mtime.toISOString() : "";
    return `<tr><td><a href="./${href}">${label}</a></td><td>${size}</td><td>${when}</td></tr>`;
  });
  if (dir !== "") rows.unshift('<tr><td><a href="../">../</a></td><td></td><td></td></tr>');
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Index of ${title}</title></head>
<body><h1>Index of ${title}</h1>
<table><thead><tr><th>Name</th><th>Size</th><th>Modified</th></tr></thead><tbody>
${rows.join("\n")}
</tbody></table>${truncated ? "\n<p>Listing truncated; use <code>cacheroach file ls -R</code> for everything.</p>" : ""}
</body></html>
`;
}
