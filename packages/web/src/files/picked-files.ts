/**
 * Files the user chose, with their paths relative to the folder they drop into: from a drop
 * (files and whole folders, walked with the File and Directory Entries API) or from a file input
 * (a folder input gives each file's webkitRelativePath).
 */

/** A file and where it goes below the current folder ("photos/a.jpg"). */
export interface PickedFile {
  readonly rel: string;
  readonly file: File;
}

/** Files of an <input type=file> (with or without webkitdirectory). */
export function fromFileList(list: FileList | null): PickedFile[] {
  return Array.from(list ?? [], (file) => ({ rel: file.webkitRelativePath || file.name, file }));
}

/** Files of a drop, folders walked recursively. */
export async function fromDataTransfer(dt: DataTransfer): Promise<PickedFile[]> {
  // Entries must be taken synchronously, before the event handler returns.
  const entries: (FileSystemEntry | File)[] = [];
  for (const item of Array.from(dt.items)) {
    if (item.kind !== "file") continue;
    const entry = typeof item.webkitGetAsEntry === "function" ? item.webkitGetAsEntry() : null;
    const file = entry ? undefined : item.getAsFile();
    if (entry) entries.push(entry);
    else if (file) entries.push(file);
  }
  if (entries.length === 0) return fromFileList(dt.files);
  const out: PickedFile[] = [];
  for (const e of entries) {
    if (e instanceof File) out.push({ rel: e.name, file: e });
    else await walk(e, "", out);
  }
  return out;
}

async function walk(entry: FileSystemEntry, prefix: string, out: PickedFile[]): Promise<void> {
  const rel = prefix + entry.name;
  if (entry.isFile) {
    const file = await new Promise<File>((resolve, reject) =>
      (entry as FileSystemFileEntry).file(resolve, reject),
    );
    out.push({ rel, file });
    return;
  }
  if (!entry.isDirectory) return;
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  // readEntries answers in batches (100 in Chrome) until it answers an empty one.
  for (;;) {
    const batch = await new Promise<FileSystemEntry[]>((resolve, reject) =>
      reader.readEntries(resolve, reject),
    );
    if (batch.length === 0) break;
    for (const child of batch) await walk(child, `${rel}/`, out);
  }
}
