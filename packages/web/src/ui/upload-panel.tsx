/** The uploads of this page: one row per file with its progress, result and a cancel button. */
import { useEffect, useState } from "preact/hooks";
import type { QueueItem, UploadQueue } from "../files/upload-queue.js";
import { formatSize } from "./format.js";

export function UploadPanel({ queue }: { queue: UploadQueue }) {
  const [items, setItems] = useState(queue.snapshot());
  useEffect(() => queue.subscribe(() => setItems(queue.snapshot())), [queue]);
  if (items.length === 0) return null;
  const active = items.filter((i) => i.state.kind === "queued" || i.state.kind === "sending").length;
  const failed = items.filter((i) => i.state.kind === "failed").length;
  const done = items.filter((i) => i.state.kind === "done").length;
  return (
    <section class="uploads" aria-label="Uploads">
      <header>
        <h2>Uploads</h2>
        <span class="summary" aria-live="polite">
          {active > 0 ? `${active} in progress, ` : ""}
          {done} done{failed > 0 ? `, ${failed} failed` : ""}
        </span>
        {active > 0 && (
          <button type="button" onClick={() => queue.cancelAll()}>
            Cancel all
          </button>
        )}
        {active < items.length && (
          <button type="button" onClick={() => queue.clearFinished()}>
            Clear finished
          </button>
        )}
      </header>
      <ul>
        {items.map((i) => (
          <UploadRow key={i.id} item={i} onCancel={() => queue.cancel(i.id)} />
        ))}
      </ul>
    </section>
  );
}

function UploadRow({ item, onCancel }: { item: QueueItem; onCancel: () => void }) {
  const s = item.state;
  const size = item.job.size;
  const sent = s.kind === "sending" ? s.sent : s.kind === "done" ? size : 0;
  return (
    <li class={`upload ${s.kind}`} data-path={item.job.path} data-state={s.kind}>
      <span class="upload-path">{item.job.path}</span>
      <progress
        max={Math.max(size, 1)}
        value={size === 0 && s.kind === "done" ? 1 : sent}
        aria-label={`${item.job.path} progress`}
      />
      <span class="upload-status">
        {s.kind === "queued" && "waiting"}
        {s.kind === "sending" && `${formatSize(sent)} of ${formatSize(size)}`}
        {s.kind === "done" && `done: version ${String(s.file.version)}`}
        {s.kind === "cancelled" && "cancelled: nothing was written"}
        {s.kind === "skipped" && s.why}
        {s.kind === "failed" && (
          <span role="alert" class="problem-message">
            {s.problem.message}
            {s.problem.code ? ` (${s.problem.code})` : ""}
          </span>
        )}
      </span>
      {(s.kind === "queued" || s.kind === "sending") && (
        <button type="button" class="small" onClick={onCancel} aria-label={`Cancel ${item.job.path}`}>
          Cancel
        </button>
      )}
    </li>
  );
}
