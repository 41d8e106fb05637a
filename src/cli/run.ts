/**
 * Shared runner for the gc and bd programs: usage errors exit 2, other
 * errors are reported by `reportError`, and `--json` switches error output
 * to JSON on stderr.
 */
import { CommanderError, type Command } from 'commander';
import { EXIT, reportError } from './output.js';

function overrideExits(cmd: Command): void {
  // exitOverride is only inherited by commands added after it: apply it everywhere.
  cmd.exitOverride();
  for (const sub of cmd.commands) overrideExits(sub);
}

export async function runProgram(name: string, program: Command, argv: string[]): Promise<void> {
  overrideExits(program);
  // `gc ... | head` closes our stdout early: that is not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw err;
  });
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
