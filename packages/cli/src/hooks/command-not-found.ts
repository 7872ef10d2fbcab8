/**
 * A command line that names no command (`cacheroach tenat ls`, `cacheroach ls`, `cacheroach -x
 * file ls`): says what is wrong and exits 2 (bad usage). A misspelled or partial command gets the
 * commands it most likely meant (command-suggestion.ts), printed, never run: the user runs the one
 * they meant. A flag before the command that is not a global one, or a global flag missing its
 * value, is named as such (leading-flags.ts).
 */
import { Errors, type Hook } from "@oclif/core";
import { commandSuggestions } from "../lib/command-suggestion.js";
import { ExitCode } from "../lib/errors.js";
import { selfCommand, shellWord } from "../lib/invocation.js";
import { leadingFlagProblem } from "../lib/leading-flags.js";

const hook: Hook.CommandNotFound = async (opts) => {
  const bin = opts.config.bin;
  const self = selfCommand();
  const all = opts.id.split(":").concat(opts.argv ?? []);
  const flags = leadingFlagProblem(
    all,
    (id) => {
      const command = opts.config.findCommand(id);
      return command
        ? Object.entries(command.flags ?? {}).map(([name, f]) => ({ name, char: f.char }))
        : undefined;
    },
    self,
  );
  if ("problem" in flags) {
    throw new Errors.CLIError(flags.problem.message, {
      exit: ExitCode.usage,
      code: "unknown_flag",
      suggestions: flags.problem.suggestions,
    });
  }
  const words = all.slice(flags.rest);
  const visible = opts.config.commands.filter((c) => !c.hidden).map((c) => c.id);
  const suggestions = commandSuggestions(words, visible);
  const typed = `${bin} ${(suggestions[0]?.typed ?? words).map(shellWord).join(" ")}`;
  const topic = opts.config.findTopic(words[0] ?? "") ? ` ${words[0]}` : "";
  const hints = suggestions.map(
    (s, i) =>
      `${i === 0 ? "did you mean" : "or"}: ${self} ${[...s.command, ...s.args].map(shellWord).join(" ")}`,
  );
  hints.push(`list the commands: ${self} help${topic}`);
  throw new Errors.CLIError(`"${typed}" is not a ${bin} command`, {
    exit: ExitCode.usage,
    code: "command_not_found",
    suggestions: hints,
  });
};

export default hook;
