/** A failure in words: what was being done, the server's message, its code and a hint. */
import type { Problem } from "../api/errors.js";

export function ProblemView({
  problem,
  onDismiss,
  onRetry,
}: {
  problem: Problem;
  onDismiss?: () => void;
  /** Offered when doing it again may succeed (e.g. a listing that failed). */
  onRetry?: () => void;
}) {
  return (
    <div class="problem" role="alert">
      <strong>{problem.doing} failed:</strong> <span class="problem-message">{problem.message}</span>
      {problem.code && <code class="problem-code">{problem.code}</code>}
      {problem.hint && <p class="hint">{problem.hint}</p>}
      {onRetry && (
        <button type="button" class="link" onClick={onRetry}>
          Try again
        </button>
      )}
      {onDismiss && (
        <button type="button" class="link" onClick={onDismiss}>
          Dismiss
        </button>
      )}
    </div>
  );
}
