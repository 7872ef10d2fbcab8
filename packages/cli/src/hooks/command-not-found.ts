/**
 * An unknown command (`cacheroach tenat ls`): names the closest command and exits 2 (bad usage).
 * In an interactive terminal, @oclif/plugin-not-found asks "Did you mean tenant ls?" and runs it
 * when confirmed; it is handed only the misspelled command words (oclif passes the whole command
 * line as the ID, which would make its guess and the re-run wrong when arguments follow).
 */
import { Errors, type Hook } from "@oclif/core";
import notFoundPrompt from "@oclif/plugin-not-found";
import { closestCommand } from "../lib/command-suggestion.js";
import { ExitCode } from "../lib/errors.js";
import { selfCommand, shellWord } from "../lib/invocation.js";

const hook: Hook.CommandNotFound = async function (opts) {
  const bin = opts.config.bin;
  const self = selfCommand();
  const words = opts.id.split(":").concat(opts.argv ?? []);
  const visible = opts.config.commands.filter((c) => !c.hidden).map((c) => c.id);
  const suggestion = closestCommand(words, visible);
  const typed = `${bin} ${(suggestion?.typed ?? words).map(shellWord).join(" ")}`;
  if (suggestion && process.stdin.isTTY && process.stderr.isTTY) {
    try {
      return await notFoundPrompt.call(this, {
        ...opts,
        id: suggestion.typed.join(":"),
        argv: suggestion.args,
      });
    } catch (err) {
      // Declined (or no answer): the plugin's own error (exit 127) becomes the one below. Errors of
      // the command it ran when confirmed pass through.
      if (!(err instanceof Errors.CLIError) || err.oclif.exit !== 127) throw err;
    }
  }
  const topic = opts.config.findTopic(words[0] ?? "") ? ` ${words[0]}` : "";
  const suggestions = suggestion
    ? [
        `did you mean: ${[self, ...suggestion.command, ...suggestion.args].map((w, i) => (i === 0 ? w : shellWord(w))).join(" ")}`,
      ]
    : [];
  suggestions.push(`list the commands: ${self} help${topic}`);
  throw new Errors.CLIError(`"${typed}" is not a ${bin} command`, {
    exit: ExitCode.usage,
    code: "command_not_found",
    suggestions,
  });
};

export default hook;
