import { Uploads } from "@cacheroach/proto";
import { Args, Flags } from "@oclif/core";
import { BaseCommand, tenantFlag } from "../../lib/base-command.js";
import { EXIT_CODES_HELP, ExitCode, UserError } from "../../lib/errors.js";
import { type FileJson, fileJson } from "../../lib/file-json.js";
import { table } from "../../lib/format.js";
import { checkRemoteDir, remotePathProblem } from "../../lib/paths.js";

/** One line of `file fetch` output. */
export interface FetchResult {
  path: string;
  url: string;
  /** "stored" (200), "unchanged" (304), "failed" (another remote status) or "error" (the call failed). */
  status: "stored" | "unchanged" | "failed" | "error";
  /** The remote HTTP status (0 when the call itself failed). */
  code: number;
  message: string;
  file?: FileJson;
  error?: string;
  errorCode?: string;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Parses repeated `--header Name=value` (or `Name: value`) flags. */
export function parseHeaders(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const m = /^([^=:]+)(?:=|:\s?)(.*)$/s.exec(v);
    const name = m?.[1]?.trim() ?? "";
    if (!m || !HEADER_NAME.test(name)) {
      throw new UserError(`--header "${v}" is not Name=value`, ExitCode.usage, [
        '--header "Authorization=Bearer abc" --header Accept=text/csv',
      ]);
    }
    if (/[\r\n]/.test(m[2] ?? ""))
      throw new UserError(`--header ${name}: the value must be one line`, ExitCode.usage);
    out[name] = m[2] ?? "";
  }
  return out;
}

/** The remote file name a URL is stored under: the last segment of its path, decoded. */
export function urlFileName(url: URL): string {
  const seg = url.pathname.slice(url.pathname.lastIndexOf("/") + 1);
  try {
    return decodeURIComponent(seg);
  } catch {
    return seg;
  }
}

export default class FileFetch extends BaseCommand<typeof FileFetch> {
  static override summary = "Have the server download URLs into a remote directory.";

  static override description =
    `For each URL, the server itself makes the HTTP request (Uploads.Fetch) and stores the body as <remote-dir><file name of the URL's path>; the data never passes through this machine. Needs write and fetch on each destination.

The server sends the stored file's modification time as If-Modified-Since, so fetching an unchanged file again answers 304 and keeps the existing version ("unchanged" — not an error). Only a 200 stores a new version; any other remote status (404, 500, a redirect — redirects are not followed) is reported as failed and stores nothing. The server bounds size and time and refuses private-network addresses unless its operator allows them.

Prints Path, URL, remote Code and Message for each URL. All arguments are checked before anything is fetched; every URL is attempted; the command exits non-zero (1, or the RPC's exit code) if any failed.

${EXIT_CODES_HELP}`;

  static override examples = [
    {
      description: "Mirror two files into /mirror/",
      command:
        "<%= config.bin %> <%= command.id %> /mirror/ https://example.com/data/a.csv https://example.com/data/b.csv",
    },
    {
      description: "With a request header",
      command:
        '<%= config.bin %> <%= command.id %> --header "Authorization=Bearer $API_TOKEN" /api/ https://api.example.com/export.json',
    },
    {
      description: "POST to an export endpoint",
      command:
        "<%= config.bin %> <%= command.id %> --method POST /exports/ https://example.com/run/report.pdf",
    },
  ];

  static override strict = false;

  static override usage =
    "<%= command.id %> REMOTE-DIR/ URL... [--header Name=value]... [--method GET|POST] [-t <tenant>] [--json]";

  static override args = {
    "remote-dir": Args.string({ required: true, description: 'Absolute remote directory ending with "/"' }),
    url: Args.string({ required: true, description: "http(s) URLs to fetch (one or more)" }),
  };

  static override flags = {
    tenant: tenantFlag,
    header: Flags.string({
      char: "H",
      summary: "A request header for the remote server, Name=value (repeatable).",
      multiple: true,
      multipleNonGreedy: true,
      helpValue: "<name=value>",
    }),
    method: Flags.string({ summary: "The remote request method: GET or POST.", default: "GET" }),
  };

  public async run(): Promise<FetchResult[] | undefined> {
    const [dirArg, ...urlArgs] = this.positionals;
    const dir = checkRemoteDir(dirArg ?? "", "file fetch", "<url>...", urlArgs);
    if (urlArgs.length === 0) {
      throw new UserError("no URL given", ExitCode.usage, [
        `cacheroach file fetch ${dir} https://example.com/file.txt`,
      ]);
    }
    const method = this.flags.method.trim().toUpperCase();
    if (method !== "GET" && method !== "POST") {
      throw new UserError(`--method ${this.flags.method}: only GET and POST are supported`, ExitCode.usage);
    }
    const headers = parseHeaders(this.flags.header ?? []);
    const jobs: { url: string; path: string }[] = [];
    const seen = new Map<string, string>();
    for (const text of urlArgs) {
      let url: URL;
      try {
        url = new URL(text);
      } catch {
        throw new UserError(`"${text}" is not a URL`, ExitCode.usage, [
          "give full URLs: https://host/path/file",
        ]);
      }
      if (url.protocol !== "http:" && url.protocol !== "https:") {
        throw new UserError(`"${text}": only http and https URLs can be fetched`, ExitCode.usage);
      }
      const name = urlFileName(url);
      if (name === "") {
        throw new UserError(`cannot name the file for ${text}: its path has no file name`, ExitCode.usage, [
          "fetch a URL whose path ends in a file name, e.g. https://example.com/data/report.csv",
        ]);
      }
      const path = `${dir}${name}`;
      const problem = remotePathProblem(path);
      if (problem)
        throw new UserError(`${text} would be stored as "${path}", which ${problem}`, ExitCode.usage);
      const prev = seen.get(path);
      if (prev !== undefined) {
        throw new UserError(`${prev} and ${text} would both be stored as ${path}`, ExitCode.usage, [
          "fetch them into different directories",
        ]);
      }
      seen.set(path, text);
      jobs.push({ url: url.toString(), path });
    }

    const tenantId = await this.resolveTenant(this.flags.tenant);
    const uploads = await this.client(Uploads);
    const items = this.itemResults<FetchResult, FetchResult>(jobs.length);
    for (const [i, job] of jobs.entries()) {
      try {
        const res = await uploads.fetch({
          tenantId,
          path: job.path,
          remoteUrl: job.url,
          remoteHeaders: headers,
          remoteMethod: method,
        });
        const code = res.remoteHttpCode;
        const r: FetchResult = {
          path: job.path,
          url: job.url,
          status: code === 200 ? "stored" : code === 304 ? "unchanged" : "failed",
          code,
          message: res.remoteHttpMessage,
        };
        if (res.file) r.file = fileJson(res.file);
        if (r.status === "failed") items.fail(i, r);
        else items.ok(i, r);
      } catch (e) {
        const failure = await this.describeItemFailure(e, { tenant: tenantId, explainNotFound: true });
        if (jobs.length === 1) throw failure.described;
        const r: FetchResult = {
          path: job.path,
          url: job.url,
          status: "error",
          code: 0,
          message: "",
          error: failure.described.message,
        };
        if (failure.described.code) r.errorCode = failure.described.code;
        items.fail(i, r, failure);
      }
    }

    if (!this.jsonEnabled()) {
      this.log(
        table(items.results, [
          { header: "Path", get: (r) => r.path },
          { header: "URL", get: (r) => r.url },
          { header: "Code", get: (r) => (r.status === "error" ? "-" : String(r.code)), right: true },
          {
            header: "Message",
            get: (r) =>
              r.status === "error"
                ? `error: ${r.error}`
                : `${r.message.replace(new RegExp(`^${r.code} `), "")}${r.status === "unchanged" ? " (unchanged)" : ""}${r.file ? ` (version ${r.file.version}, ${r.file.size} bytes)` : ""}`,
          },
        ]),
      );
    }
    return items.finish((failed, first, exit) => {
      const r = first.result;
      return new UserError(
        `${failed} of ${jobs.length} URLs were not stored (first: ${r.url}: ${
          r.status === "error" ? r.error : `remote answered ${r.code} ${r.message}`
        })`,
        exit,
        r.status === "failed" ? ["check the URL, or the --header/--method the remote server expects"] : [],
      );
    });
  }
}
