/**
 * One tenant's files: breadcrumbs, a sortable listing of the current folder, uploads by drag and
 * drop or file pickers (with the overwrite prompt), and the details of a chosen file.
 */
import type { FileMeta, Tenant } from "@cacheroach/proto";
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { Api } from "../api/client.js";
import { describe, type Problem, withTransientRetries } from "../api/errors.js";
import { type Entry, type Listing, listFolder, type SortKey, sortEntries } from "../files/listing.js";
import { badSegment, crumbs, freeName, join } from "../files/paths.js";
import { fromDataTransfer, fromFileList, type PickedFile } from "../files/picked-files.js";
import { blobReader, type UploadJob, type WriteGuard } from "../files/upload.js";
import { UploadQueue } from "../files/upload-queue.js";
import { type Choice, ConflictDialog } from "./conflict-dialog.js";
import { FileDetails } from "./file-details.js";
import { formatSize, formatTime, hex } from "./format.js";
import { useLatestOnly } from "./latest-only.js";
import { Modal } from "./modal.js";
import { ProblemView } from "./problem-view.js";
import { routeHash } from "./route.js";
import { UploadPanel } from "./upload-panel.js";

interface Props {
  api: Api;
  tenant: Tenant | undefined;
  tenantId: string;
  dir: string;
  onNavigate: (dir: string) => void;
}

/** A pending overwrite question. */
interface Conflict {
  path: string;
  version: bigint;
  remaining: number;
  answer: (c: Choice, forAll: boolean) => void;
}

export function FileBrowser({ api, tenant, tenantId, dir, onNavigate }: Props) {
  const [listing, setListing] = useState<Listing>();
  const [problem, setProblem] = useState<Problem>();
  const [sort, setSort] = useState<{ key: SortKey; desc: boolean }>({ key: "name", desc: false });
  const [selected, setSelected] = useState<FileMeta>();
  const [conflict, setConflict] = useState<Conflict>();
  const [dragging, setDragging] = useState(false);
  const [askFolder, setAskFolder] = useState(false);
  const queue = useMemo(() => new UploadQueue(api), [api]);
  const filesInput = useRef<HTMLInputElement>(null);
  const folderInput = useRef<HTMLInputElement>(null);

  const listings = useLatestOnly();
  const refresh = useCallback(async () => {
    const isNewest = listings.take();
    try {
      const got = await withTransientRetries(
        () => listFolder(api, tenantId, dir),
        () => !isNewest(),
      );
      if (!isNewest()) return;
      setListing(got);
      setProblem(undefined);
    } catch (err) {
      if (!isNewest()) return;
      setListing(undefined);
      setProblem(describe(`Listing ${dir}`, err));
    }
  }, [api, tenantId, dir, listings]);
  useEffect(() => {
    setListing(undefined);
    void refresh();
    return listings.dropAll; // unmounted or moved on: late answers are dropped
  }, [refresh, listings]);
  // Refresh once a burst of finished uploads settles.
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const off = queue.onFinished(() => {
      clearTimeout(timer);
      timer = setTimeout(() => void refresh(), 300);
    });
    return () => {
      off();
      clearTimeout(timer);
    };
  }, [queue, refresh]);

  const ask = (path: string, version: bigint, remaining: number) =>
    new Promise<{ choice: Choice; forAll: boolean }>((resolve) =>
      setConflict({
        path,
        version,
        remaining,
        answer: (choice, forAll) => {
          setConflict(undefined);
          resolve({ choice, forAll });
        },
      }),
    );

  /** Queues `picked` into the current folder, asking about each path that exists. */
  const start = async (picked: PickedFile[]) => {
    if (picked.length === 0) return;
    let existing: Map<string, bigint>;
    try {
      existing = (await listFolder(api, tenantId, dir)).versions;
    } catch (err) {
      setProblem(describe(`Checking ${dir} before uploading`, err));
      return;
    }
    const taken = new Set(existing.keys());
    const jobs: UploadJob[] = [];
    let forAll: Choice | undefined;
    const conflicts = picked.filter((p) => existing.has(join(dir, p.rel))).length;
    let asked = 0;
    for (const p of picked) {
      let path = join(dir, p.rel);
      const job = (guard: WriteGuard, at = path): UploadJob => ({
        tenantId,
        path: at,
        size: p.file.size,
        read: blobReader(p.file),
        contentType: p.file.type,
        guard,
      });
      const bad = badSegment(p.rel);
      if (bad) {
        queue.addSkipped(job({ kind: "create" }), `not uploaded: ${bad}`);
        continue;
      }
      const version = existing.get(path);
      if (version === undefined) {
        jobs.push(job({ kind: "create" }));
        taken.add(path);
        continue;
      }
      asked++;
      let choice = forAll;
      if (!choice) {
        const a = await ask(path, version, conflicts - asked);
        choice = a.choice;
        if (a.forAll) forAll = choice;
      }
      if (choice === "skip") queue.addSkipped(job({ kind: "create" }), "skipped: it exists");
      else if (choice === "replace") jobs.push(job({ kind: "replace", version }));
      else {
        path = freeName(path, taken);
        taken.add(path);
        jobs.push(job({ kind: "create" }, path));
      }
    }
    queue.add(jobs);
  };

  const onDrop = async (e: DragEvent) => {
    e.preventDefault();
    setDragging(false);
    if (!e.dataTransfer) return;
    try {
      await start(await fromDataTransfer(e.dataTransfer));
    } catch (err) {
      setProblem(describe("Reading the dropped files", err));
    }
  };

  const rows = listing ? sortEntries(listing.entries, sort.key, sort.desc) : [];
  const sortButton = (key: SortKey, label: string) => (
    <th
      scope="col"
      class={`col-${key}`}
      aria-sort={sort.key === key ? (sort.desc ? "descending" : "ascending") : "none"}
    >
      <button
        type="button"
        class="sort"
        onClick={() => setSort({ key, desc: sort.key === key ? !sort.desc : false })}
      >
        {label}
        {sort.key === key ? (sort.desc ? " ↓" : " ↑") : ""}
      </button>
    </th>
  );

  return (
    <section
      class={dragging ? "browser dragging" : "browser"}
      aria-label="Files"
      onDragOver={(e) => {
        e.preventDefault();
        if (e.dataTransfer) e.dataTransfer.dropEffect = "copy";
        setDragging(true);
      }}
      onDragLeave={(e) => {
        if (e.currentTarget === e.target) setDragging(false);
      }}
      onDrop={onDrop}
    >
      <nav class="crumbs" aria-label="Folder">
        <ol>
          {crumbs(dir).map((c, i, all) => (
            <li key={c.path}>
              {i === all.length - 1 ? (
                <span aria-current="page">{i === 0 ? (tenant?.label ?? "/") : c.name}</span>
              ) : (
                <a href={routeHash({ kind: "files", tenantId, dir: c.path })}>
                  {i === 0 ? (tenant?.label ?? "/") : c.name}
                </a>
              )}
            </li>
          ))}
        </ol>
      </nav>
      <div class="toolbar">
        <button type="button" class="primary" onClick={() => filesInput.current?.click()}>
          Upload files
        </button>
        <button type="button" onClick={() => folderInput.current?.click()}>
          Upload folder
        </button>
        <button type="button" onClick={() => setAskFolder(true)}>
          New folder
        </button>
        <button type="button" onClick={() => void refresh()}>
          Refresh
        </button>
        <input
          ref={filesInput}
          type="file"
          multiple
          hidden
          data-testid="files-input"
          onChange={(e) => {
            const picked = fromFileList(e.currentTarget.files);
            e.currentTarget.value = "";
            void start(picked);
          }}
        />
        <input
          ref={folderInput}
          type="file"
          hidden
          data-testid="folder-input"
          // @ts-expect-error: not in the DOM typings, supported by every current browser
          webkitdirectory={true}
          onChange={(e) => {
            const picked = fromFileList(e.currentTarget.files);
            e.currentTarget.value = "";
            void start(picked);
          }}
        />
        <span class="drop-hint">or drop files and folders here</span>
      </div>
      {problem && (
        <ProblemView
          problem={problem}
          onDismiss={() => setProblem(undefined)}
          onRetry={
            listing === undefined
              ? () => {
                  setProblem(undefined);
                  void refresh();
                }
              : undefined
          }
        />
      )}
      <UploadPanel queue={queue} />
      {listing === undefined && !problem && <p class="loading">Loading {dir}…</p>}
      {listing && rows.length === 0 && (
        <p class="empty">
          {dir === "/"
            ? "No files yet."
            : `${dir} is empty: a folder exists once a file is uploaded into it.`}{" "}
          Drop files here or use Upload.
        </p>
      )}
      {listing?.truncated && (
        <p class="hint">This folder has very many files below it: only part of it is listed.</p>
      )}
      {rows.length > 0 && (
        <table class="listing">
          <thead>
            <tr>
              {sortButton("name", "Name")}
              {sortButton("size", "Size")}
              <th scope="col" class="col-version">
                Version
              </th>
              <th scope="col" class="col-type">
                Type
              </th>
              {sortButton("modified", "Modified")}
              <th scope="col" class="col-hash">
                Content hash
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((e) => (
              <Row
                key={e.path}
                entry={e}
                folderHref={(d) => routeHash({ kind: "files", tenantId, dir: d })}
                onOpenFile={setSelected}
              />
            ))}
          </tbody>
        </table>
      )}
      {selected && (
        <FileDetails
          api={api}
          file={selected}
          onClose={() => setSelected(undefined)}
          onChanged={(f) => {
            setSelected(f);
            void refresh();
          }}
        />
      )}
      {conflict && (
        <ConflictDialog
          path={conflict.path}
          version={conflict.version}
          remaining={conflict.remaining}
          onAnswer={conflict.answer}
        />
      )}
      {askFolder && (
        <NewFolder
          onCancel={() => setAskFolder(false)}
          onCreate={(name) => {
            setAskFolder(false);
            onNavigate(join(dir, name));
          }}
        />
      )}
    </section>
  );
}

function Row({
  entry,
  folderHref,
  onOpenFile,
}: {
  entry: Entry;
  folderHref: (dir: string) => string;
  onOpenFile: (f: FileMeta) => void;
}) {
  if (entry.kind === "folder")
    return (
      <tr class="folder">
        <td class="col-name">
          <a href={folderHref(entry.path)}>{entry.name}/</a>
        </td>
        <td class="col-size">{formatSize(entry.size)}</td>
        <td class="col-version" />
        <td class="col-type">
          {entry.files} file{entry.files === 1 ? "" : "s"}
        </td>
        <td class="col-modified">{formatTime(entry.modified)}</td>
        <td class="col-hash" />
      </tr>
    );
  const f = entry.file;
  const h = hex(f.contentHash);
  return (
    <tr class="file">
      <td class="col-name">
        <button type="button" class="link" onClick={() => onOpenFile(f)}>
          {entry.name}
        </button>
      </td>
      <td class="col-size">{formatSize(f.size)}</td>
      <td class="col-version">{String(f.version)}</td>
      <td class="col-type">{f.contentType || "—"}</td>
      <td class="col-modified">{formatTime(f.modifiedAt)}</td>
      <td class="col-hash">
        <code title={h}>{h.slice(0, 12)}</code>
      </td>
    </tr>
  );
}

function NewFolder({ onCancel, onCreate }: { onCancel: () => void; onCreate: (name: string) => void }) {
  const [name, setName] = useState("");
  const bad = name === "" ? undefined : (badSegment(name.replace(/\/+$/, "")) ?? undefined);
  return (
    <Modal title="New folder" onClose={onCancel}>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (name.trim() !== "" && !bad) onCreate(name.trim().replace(/\/+$/, ""));
        }}
      >
        <label for="folder-name">Folder name</label>
        <input id="folder-name" value={name} onInput={(e) => setName(e.currentTarget.value)} />
        {bad && <p class="problem">{bad}</p>}
        <p class="hint">Folders exist once a file is in them: upload into it next.</p>
        <div class="actions">
          <button type="submit" class="primary" disabled={name.trim() === "" || !!bad}>
            Open folder
          </button>
          <button type="button" onClick={onCancel}>
            Cancel
          </button>
        </div>
      </form>
    </Modal>
  );
}
