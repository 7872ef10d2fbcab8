/** "<path> exists: replace / keep both / skip", optionally for every remaining conflict. */
import { useState } from "preact/hooks";
import { Modal } from "./modal.js";

export type Choice = "replace" | "keep-both" | "skip";

export function ConflictDialog(props: {
  path: string;
  version: bigint;
  remaining: number;
  onAnswer: (choice: Choice, forAll: boolean) => void;
}) {
  const [forAll, setForAll] = useState(false);
  return (
    <Modal title="File exists" onClose={() => props.onAnswer("skip", false)}>
      <p>
        <code>{props.path}</code> exists (version {String(props.version)}).
      </p>
      <div class="actions">
        <button type="button" class="primary" onClick={() => props.onAnswer("replace", forAll)}>
          Replace
        </button>
        <button type="button" onClick={() => props.onAnswer("keep-both", forAll)}>
          Keep both
        </button>
        <button type="button" onClick={() => props.onAnswer("skip", forAll)}>
          Skip
        </button>
      </div>
      {props.remaining > 0 && (
        <label class="check">
          <input type="checkbox" checked={forAll} onChange={(e) => setForAll(e.currentTarget.checked)} />
          Do this for the {props.remaining} other existing file{props.remaining === 1 ? "" : "s"}
        </label>
      )}
    </Modal>
  );
}
