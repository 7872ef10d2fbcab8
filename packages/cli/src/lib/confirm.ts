/** Asking before destructive operations (`--yes` skips the question). */
import { createInterface } from "node:readline/promises";
import { ExitCode, UserError } from "./errors.js";

/** Can we ask the user? Only with a terminal on stdin and stderr. */
export function canPrompt(): boolean {
  return Boolean(process.stdin.isTTY && process.stderr.isTTY);
}

/**
 * Fails early (usage error naming `--yes`, nothing changed) when confirmation would be needed
 * but there is no terminal to ask on. Call before any server call.
 */
export function ensureConfirmable(what: string, yes: boolean, retry: string): void {
  if (yes || canPrompt()) return;
  throw new UserError(
    `refusing to ${what} without confirmation: there is no terminal to ask on; nothing was changed`,
    ExitCode.usage,
    [`confirm on the command line: ${retry} --yes`],
    "confirmation_required",
  );
}

/**
 * Makes sure the user wants `what` done: passes with `yes`; otherwise asks on the terminal
 * (the answer must be "yes"); without a terminal it is a usage error naming `--yes`.
 * Throws when not confirmed; nothing has been changed at that point.
 */
export async function requireConfirmation(what: string, yes: boolean, retry: string): Promise<void> {
  if (yes) return;
  ensureConfirmable(what, yes, retry);
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  let answer: string;
  try {
    answer = await rl.question(`About to ${what}. Type "yes" to go ahead: `);
  } finally {
    rl.close();
  }
  if (answer.trim().toLowerCase() !== "yes") {
    throw new UserError("not confirmed; nothing was changed", ExitCode.failure, [], "not_confirmed");
  }
}
