import { timestampDate } from "@bufbuild/protobuf/wkt";
import { type FileMeta, FilesListBytes } from "@cacheroach/proto";
import { Args, Flags, ux } from "@oclif/core";
import { BaseCommand, tenantFlag } from "../../lib/base-command.js";
import { EXIT_CODES_HELP, ExitCode, UserError } from "../../lib/errors.js";
import { type FileJson, fileJson, shortHash } from "../../lib/file-json.js";
import { formatBytes, formatLocalTime, formatTime, table } from "../../lib/format.js";
import { checkRemotePrefix } from "../../lib/paths.js";
import { fastLister, listChildren, listRemote } from "../../lib/remote-tree.js";

/** One line of `file ls --json`: a file, or (without -R) a sub-directory. */
export type LsJson = FileJson | { path: string; type: "directory" };

export default class FileLs extends BaseCommand<typeof FileLs> {
  static override summary = "List what is in a directory (-R: every file below it).";

  static override description =
    `Lists what is directly at a path, like ls: the files in the directory and its sub-directories (as "name/"), or the file itself when the path names one. -R lists every file below the path instead, recursively, in bytewise path order ("-R /" lists the whole tenant). Plain output is one path per line, fit for scripts; -l adds human-readable sizes and local modification times (--bytes: sizes in bytes), -w size, version, modification time (UTC) and a short content hash; --json gives every field. Long listings are fetched a page at a time.

A path under which nothing is stored is an error ("no such path", exit 4); an empty tenant lists nothing.

${EXIT_CODES_HELP}`;

  static override examples = [
    {
      description: "What is at the top of the default tenant",
      command: "<%= config.bin %> <%= command.id %>",
    },
    {
      description: "What is in /docs, with human-readable sizes and times",
      command: "<%= config.bin %> <%= command.id %> -l /docs/",
    },
    {
      description: "Every file below /docs, recursively",
      command: "<%= config.bin %> <%= command.id %> -R /docs/",
    },
    {
      description: "Every file below /docs with size, version, UTC time and content hash",
      command: "<%= config.bin %> <%= command.id %> -R -w /docs",
    },
    {
      description: "Machine-readable listing of another tenant, recursively",
      command: "<%= config.bin %> <%= command.id %> --json -R -t 0a0a0a0a-0a0a-0a0a-0a0a-0a0a0a0a0a0a /",
    },
  ];

  static override args = {
    path: Args.string({ description: "Remote path or directory prefix", default: "/" }),
  };

  static override flags = {
    tenant: tenantFlag,
    long: Flags.boolean({
      char: "l",
      summary: "Show human-readable size, local modification time and version.",
      exclusive: ["wide"],
    }),
    bytes: Flags.boolean({ summary: "Sizes in bytes, not human-readable (implies -l)." }),
    wide: Flags.boolean({ char: "w", summary: "Show size, version, modification time and content hash." }),
    recursive: Flags.boolean({
      char: "R",
      allowNo: true,
      default: false,
      summary: "List every file below the path, not only what is directly in it.",
    }),
    "page-size": Flags.integer({
      summary: "Files fetched per request (default: 10000 with -R, 1000 without).",
      min: 1,
      max: 10000,
      hidden: true,
    }),
  };

  /**
   * oclif's logJson tokenizes the pretty JSON with regular expressions to colour it and joins the
   * tokens back one by one: for a listing of 100 000 files that took longer than the listing
   * itself. Without a JSON colour theme the text is the same as JSON.stringify's, written directly.
   */
  override logJson(json: unknown): void {
    if (this.config.theme?.json) super.logJson(json);
    else ux.stdout(JSON.stringify(json, null, 2));
  }

  public async run(): Promise<LsJson[] | undefined> {
    const prefix = checkRemotePrefix(this.args.path);
    const tenantId = await this.resolveTenant(this.flags.tenant);
    const files = fastLister(await this.client(FilesListBytes));
    const json = this.jsonEnabled();
    // --bytes alone asks for sizes, so it means -l (with -w, whose sizes are bytes already, nothing).
    const long = this.flags.long || (this.flags.bytes && !this.flags.wide);
    const detailed = long || this.flags.wide;
    // A recursive listing uses every file of a page, so pages are as large as the server allows
    // (each call has a fixed cost on both ends, about a page of 1000 files' decoding), and the
    // next is asked for while one is decoded (listRemote); one without -R stops reading a page at
    // its first sub-directory, so smaller pages waste less.
    const pageSize = this.flags["page-size"] ?? (this.flags.recursive ? undefined : 1000);
    const lister = pageSize === undefined ? { files, tenantId } : { files, tenantId, pageSize };
    const root = prefix === "/" ? "" : prefix;
    const entries: (FileMeta | string)[] = [];
    let found = false;
    if (this.flags.recursive) {
      for await (const page of listRemote(lister, root)) {
        found = true;
        if (json || detailed) entries.push(...page);
        else this.log(page.map((f) => f.path).join("\n"));
      }
    } else {
      for await (const child of listChildren(lister, root)) {
        found = true;
        const entry = child.kind === "file" ? child.file : child.path;
        if (json || detailed) entries.push(entry);
        else this.log(typeof entry === "string" ? entry : entry.path);
      }
    }
    if (!found) {
      const problem = await this.tenantProblem(tenantId);
      if (problem) throw problem;
      if (root !== "") {
        throw new UserError(`no such path: nothing is stored at or below ${root}`, ExitCode.notFound, [
          `list what there is: cacheroach file ls ${parentOf(root)}`,
        ]);
      }
    }
    if (json)
      return entries.map((e) => (typeof e === "string" ? { path: e, type: "directory" } : fileJson(e)));
    if (entries.length === 0) return undefined;
    const when = (e: FileMeta | string, f: (d: Date | undefined) => string) =>
      typeof e === "string" ? "" : f(e.modifiedAt ? timestampDate(e.modifiedAt) : undefined);
    const path = (e: FileMeta | string) => (typeof e === "string" ? e : e.path);
    if (long) {
      const bytes = this.flags.bytes;
      this.log(
        table(entries, [
          {
            header: "Size",
            get: (e) => (typeof e === "string" ? "-" : bytes ? String(e.size) : formatBytes(Number(e.size))),
            right: true,
          },
          { header: "Modified", get: (e) => when(e, formatLocalTime) },
          { header: "Version", get: (e) => (typeof e === "string" ? "" : String(e.version)), right: true },
          { header: "Path", get: path },
        ]),
      );
    } else if (this.flags.wide) {
      this.log(
        table(entries, [
          { header: "Path", get: path },
          { header: "Size", get: (e) => (typeof e === "string" ? "" : String(e.size)), right: true },
          { header: "Version", get: (e) => (typeof e === "string" ? "" : String(e.version)), right: true },
          { header: "Modified", get: (e) => when(e, formatTime) },
          { header: "Hash", get: (e) => (typeof e === "string" ? "" : shortHash(e.contentHash)) },
        ]),
      );
    }
    return undefined;
  }
}

function parentOf(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : `${path.slice(0, i)}/`;
}
