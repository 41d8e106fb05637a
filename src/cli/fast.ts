/**
 * The agent's hot commands without the command-line parser. Every agent
 * runs `gc hook` and `gc runtime drain-check` again and again, each call a
 * fresh process, and building the full command tree (the parser and every
 * command's options) was most of such a call's CPU. A command line made of
 * exactly one of these commands and its own flags runs here; anything else
 * (another command or flag, a value, --help) goes to the full program,
 * which means the same thing by it.
 */
import type { GlobalOptions } from './context.js';
import { guardStdout, reportError } from './output.js';

type Run = (g: GlobalOptions, flags: ReadonlySet<string>) => Promise<void>;

const work = () => import('./commands/work.js');

/** Command words, the flags it may take (each a plain switch), and what runs. */
const FAST: readonly [words: string[], flags: string[], run: Run][] = [
  [
    ['hook'],
    ['--json', '--inject'],
    async (g, f) => (await work()).hook(g, f.has('--inject') ? { inject: true } : {}),
  ],
  ...(['drain-check', 'drain-ack', 'request-restart'] as const).map(
    (op): [string[], string[], Run] => [
      ['runtime', op],
      ['--json'],
      async (g) => (await work()).runtime(g, op),
    ],
  ),
];

/** The fast command `args` (argv after the program) names, if it is one. */
export function fastCommand(args: readonly string[]): { run: Run; flags: Set<string> } | undefined {
  for (const [words, allowed, run] of FAST) {
    if (args.length < words.length || words.some((w, i) => args[i] !== w)) continue;
    const flags = new Set(args.slice(words.length));
    if ([...flags].every((f) => allowed.includes(f))) return { run, flags };
  }
  return undefined;
}

/** Run `argv` here when it is a fast command (true), else leave it to the full program. */
export async function runFast(argv: readonly string[]): Promise<boolean> {
  const cmd = fastCommand(argv.slice(2));
  if (!cmd) return false;
  guardStdout();
  const json = cmd.flags.has('--json');
  try {
    await cmd.run(json ? { json } : {}, cmd.flags);
  } catch (err) {
    process.exitCode = reportError('gc', err, json);
  }
  return true;
}
