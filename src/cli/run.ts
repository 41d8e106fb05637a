/**
 * Shared runner for the gc and bd programs: usage errors exit 2, other
 * errors are reported by `reportError`, and `--json` switches error output
 * to JSON on stderr.
 */
import { CommanderError, type Command } from 'commander';
import { suggest } from '../core/index.js';
import { EXIT, guardStdout, reportError } from './output.js';

/**
 * The command a mistyped name most likely meant: the only one it starts
 * (`stat` is `status`, not `start`), else the closest by edit distance.
 */
export function commandSuggestion(word: string, names: readonly string[]): string | undefined {
  const prefixed = names.filter((n) => n.startsWith(word));
  if (prefixed.length === 1) return prefixed[0];
  return suggest(word, names);
}

function overrideExits(cmd: Command): void {
  // exitOverride is only inherited by commands added after it: apply it everywhere.
  cmd.exitOverride();
  // commander's own suggestion ranks by edit distance only.
  (cmd as unknown as { unknownCommand: () => void }).unknownCommand = () => {
    const word = cmd.args[0] ?? '';
    const names = cmd.commands.flatMap((c) => [c.name(), ...c.aliases()]);
    const guess = commandSuggestion(word, names);
    cmd.error(`error: unknown command '${word}'${guess ? `\n(Did you mean ${guess}?)` : ''}`, {
      code: 'commander.unknownCommand',
    });
  };
  for (const sub of cmd.commands) overrideExits(sub);
}

export async function runProgram(name: string, program: Command, argv: string[]): Promise<void> {
  overrideExits(program);
  guardStdout();
  const json = argv.includes('--json');
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version are successful exits.
      process.exitCode = err.exitCode === 0 ? 0 : EXIT.usage;
      return;
    }
    process.exitCode = reportError(name, err, json);
  }
}

/** Wrap an action so its numeric return (if any) becomes the exit code. */
export function action<A extends unknown[]>(
  fn: (...args: A) => Promise<number | void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const code = await fn(...args);
    if (typeof code === 'number') process.exitCode = code;
  };
}
