/**
 * `gc bd ARGS`: Gas City's pass-through to the beads commands. The argv
 * `bd` would get: gc's global options given before `bd` (--city, --actor)
 * and everything after it, untouched. Undefined when the command is not
 * `bd`.
 */
const GLOBAL_WITH_VALUE = new Set(['--city', '--actor']);

export function bdArgv(argv: readonly string[]): string[] | undefined {
  const globals: string[] = [];
  let i = 2;
  while (i < argv.length) {
    const a = argv[i]!;
    if (GLOBAL_WITH_VALUE.has(a) && i + 1 < argv.length) {
      globals.push(a, argv[i + 1]!);
      i += 2;
    } else if (/^--(city|actor)=/.test(a)) {
      globals.push(a);
      i += 1;
    } else break;
  }
  if (argv[i] !== 'bd') return undefined;
  return [argv[0] ?? 'node', 'bd', ...globals, ...argv.slice(i + 1)];
}
