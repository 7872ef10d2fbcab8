/**
 * One file: its metadata, an inline preview (text and images), download, a signed link with a
 * chosen expiry, earlier versions (download or restore) and delete with confirmation.
 */
import type { FileMeta } from "@cacheroach/proto";
import { useEffect, useState } from "preact/hooks";
import type { Api } from "../api/client.js";
import { describe, type Problem } from "../api/errors.js";
import { download, previewKind, previewText, type SignedLink, signedLink } from "../files/signed-links.js";
import { earlierVersions, restoreVersion } from "../files/versions.js";
import { formatSize, formatTime, hex } from "./format.js";
import { Modal } from "./modal.js";
import { ProblemView } from "./problem-view.js";

const EXPIRIES: readonly [number, string][] = [
  [300, "5 minutes"],
  [3600, "1 hour"],
  [86400, "1 day"],
  [7 * 86400, "7 days"],
];
const PREVIEW_BYTES = 256 * 1024;

interface Props {
  api: Api;
  file: FileMeta;
  onClose: () => void;
  /** The file changed (restored: the new version; deleted: undefined). */
  onChanged: (file: FileMeta | undefined) => void;
}

export function FileDetails({ api, file, onClose, onChanged }: Props) {
  const [problem, setProblem] = useState<Problem>();
  const [confirmDelete, setConfirmDelete] = useState(false);
  const run = async (doing: string, fn: () => Promise<void>) => {
    setProblem(undefined);
    try {
      await fn();
    } catch (err) {
      setProblem(describe(doing, err));
    }
  };
  const hash = hex(file.contentHash);
  return (
    <Modal title={file.path} onClose={onClose} wide>
      <dl class="meta">
        <dt>Size</dt>
        <dd>
          {formatSize(file.size)} ({String(file.size)} bytes)
        </dd>
        <dt>Version</dt>
        <dd>{String(file.version)}</dd>
        <dt>Type</dt>
        <dd>{file.contentType || "(from the extension)"}</dd>
        <dt>Created</dt>
        <dd>{formatTime(file.createdAt)}</dd>
        <dt>Modified</dt>
        <dd>{formatTime(file.modifiedAt)}</dd>
        <dt>Content hash</dt>
        <dd>
          <code class="hash" data-testid="content-hash">
            {hash}
          </code>
        </dd>
      </dl>
      <div class="actions">
        <button
          type="button"
          class="primary"
          onClick={() => run(`Downloading ${file.path}`, () => download(api, file))}
        >
          Download
        </button>
        <button type="button" class="danger" onClick={() => setConfirmDelete(true)}>
          Delete…
        </button>
      </div>
      {problem && <ProblemView problem={problem} onDismiss={() => setProblem(undefined)} />}
      <ShareLink api={api} file={file} />
      <Preview api={api} file={file} />
      {/* Keyed: a "more" still loading for one version must not add to the next one's list. */}
      <Versions key={`${file.path}@${file.version}`} api={api} file={file} onRestored={onChanged} />
      {confirmDelete && (
        <Modal title="Delete file?" onClose={() => setConfirmDelete(false)}>
          <p>
            Delete <code>{file.path}</code>? Earlier versions stay until garbage collection removes them.
          </p>
          <div class="actions">
            <button
              type="button"
              class="danger"
              onClick={() =>
                run(`Deleting ${file.path}`, async () => {
                  setConfirmDelete(false);
                  await api.files.delete({
                    tenantId: file.tenantId,
                    path: file.path,
                    precondition: { kind: { case: "version", value: file.version } },
                  });
                  onChanged(undefined);
                  onClose();
                })
              }
            >
              Delete
            </button>
            <button type="button" onClick={() => setConfirmDelete(false)}>
              Cancel
            </button>
          </div>
        </Modal>
      )}
    </Modal>
  );
}

function ShareLink({ api, file }: { api: Api; file: FileMeta }) {
  const [seconds, setSeconds] = useState(3600);
  const [pin, setPin] = useState(false);
  const [link, setLink] = useState<SignedLink>();
  const [copied, setCopied] = useState(false);
  const [problem, setProblem] = useState<Problem>();
  const make = async () => {
    setProblem(undefined);
    setCopied(false);
    try {
      const l = await signedLink(api, file, seconds, pin);
      setLink(l);
      try {
        await navigator.clipboard.writeText(l.url);
        setCopied(true);
      } catch {
        // No clipboard access (plain http on another host): the link is shown selected instead.
      }
    } catch (err) {
      setProblem(describe(`Signing a link to ${file.path}`, err));
    }
  };
  return (
    <section class="share" aria-label="Share">
      <h3>Signed link</h3>
      <div class="row">
        <label>
          Valid for{" "}
          <select value={seconds} onChange={(e) => setSeconds(Number(e.currentTarget.value))}>
            {EXPIRIES.map(([s, label]) => (
              <option key={s} value={s}>
                {label}
              </option>
            ))}
          </select>
        </label>
        <label class="check">
          <input type="checkbox" checked={pin} onChange={(e) => setPin(e.currentTarget.checked)} />
          This version only
        </label>
        <button type="button" onClick={make}>
          Copy link
        </button>
      </div>
      {link && (
        <div class="link-out">
          <input
            readOnly
            aria-label="Signed link"
            data-testid="signed-link"
            value={link.url}
            onFocus={(e) => e.currentTarget.select()}
          />
          <p class="hint" aria-live="polite">
            {copied ? "Copied. " : "Select and copy the link. "}
            Anyone with it can read this file until{" "}
            {link.expiresAt ? link.expiresAt.toLocaleString() : "it expires"}, or until your session is
            revoked.
          </p>
        </div>
      )}
      {problem && <ProblemView problem={problem} />}
    </section>
  );
}

function Preview({ api, file }: { api: Api; file: FileMeta }) {
  const kind = previewKind(file);
  const [content, setContent] = useState<{ text?: string; more?: boolean; image?: string }>();
  const [problem, setProblem] = useState<Problem>();
  useEffect(() => {
    setContent(undefined);
    setProblem(undefined);
    if (!kind) return;
    let live = true;
    const load =
      kind === "image"
        ? signedLink(api, file, 600, true).then((l) => ({ image: l.url }))
        : previewText(api, file, PREVIEW_BYTES);
    load.then(
      (c) => live && setContent(c),
      (err) => live && setProblem(describe(`Previewing ${file.path}`, err)),
    );
    return () => {
      live = false;
    };
  }, [api, file, kind]);
  if (!kind) return null;
  return (
    <section class="preview" aria-label="Preview">
      <h3>Preview</h3>
      {problem && <ProblemView problem={problem} />}
      {!content && !problem && <p class="loading">Loading preview…</p>}
      {content?.image && <img src={content.image} alt={`Preview of ${file.path}`} />}
      {content?.text !== undefined && (
        <>
          <pre data-testid="text-preview">{content.text}</pre>
          {content.more && <p class="hint">Showing the first {formatSize(PREVIEW_BYTES)}.</p>}
        </>
      )}
    </section>
  );
}

function Versions({
  api,
  file,
  onRestored,
}: {
  api: Api;
  file: FileMeta;
  onRestored: (f: FileMeta) => void;
}) {
  const [versions, setVersions] = useState<FileMeta[]>();
  const [below, setBelow] = useState(file.version);
  const [busy, setBusy] = useState(false);
  const [problem, setProblem] = useState<Problem>();
  useEffect(() => {
    setVersions(undefined);
    setBelow(file.version);
  }, [file]);
  if (file.version <= 1n) return null;
  const more = async () => {
    setBusy(true);
    setProblem(undefined);
    try {
      const { found, next } = await earlierVersions(api, file, below);
      setVersions([...(versions ?? []), ...found]);
      setBelow(next);
    } catch (err) {
      setProblem(describe(`Listing versions of ${file.path}`, err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="versions" aria-label="Versions">
      <h3>Earlier versions</h3>
      {versions && versions.length === 0 && <p>No earlier version is kept.</p>}
      {versions && versions.length > 0 && (
        <table class="listing">
          <thead>
            <tr>
              <th scope="col">Version</th>
              <th scope="col">Size</th>
              <th scope="col">Written</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {versions.map((v) => (
              <tr key={String(v.version)} data-version={String(v.version)}>
                <td>{String(v.version)}</td>
                <td>{formatSize(v.size)}</td>
                <td>{formatTime(v.modifiedAt)}</td>
                <td>
                  <button
                    type="button"
                    class="small"
                    onClick={() =>
                      download(api, v).catch((err) =>
                        setProblem(describe(`Downloading version ${v.version}`, err)),
                      )
                    }
                  >
                    Download
                  </button>{" "}
                  <button
                    type="button"
                    class="small"
                    disabled={busy}
                    onClick={async () => {
                      setBusy(true);
                      setProblem(undefined);
                      try {
                        onRestored(await restoreVersion(api, v, file));
                      } catch (err) {
                        setProblem(describe(`Restoring version ${v.version} of ${file.path}`, err));
                      } finally {
                        setBusy(false);
                      }
                    }}
                  >
                    Restore
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {below > 1n && (
        <button type="button" onClick={more} disabled={busy}>
          {versions ? "Show older versions" : "Show earlier versions"}
        </button>
      )}
      {problem && <ProblemView problem={problem} />}
    </section>
  );
}
