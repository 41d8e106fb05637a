/**
 * How the tmux provider spells its commands: the argument escaping tmux
 * needs, the command that creates one session, and the 0600 env file a
 * session reads its environment from. Pure functions (plus the env file
 * write), shared by `start` and the batched `startMany`.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { StartConfig } from './start-config.js';

/** Pane size: wide enough that agents do not wrap their prompts. */
const PANE_COLUMNS = '220';
const PANE_ROWS = '50';

/**
 * Escape one argv entry for tmux: an argument ending in `;` ends a tmux
 * command, unless the `;` follows a backslash, which tmux then drops. So a
 * backslash before the final `;` makes any text arrive unchanged.
 */
export function tmuxArg(value: string): string {
  return value.endsWith(';') ? `${value.slice(0, -1)}\\;` : value;
}

/** Escape `#` for options tmux expands as formats (`-c`, pipe-pane). */
export function formatLiteral(value: string): string {
  return value.replace(/#/g, '##');
}

/** Quote a value for a shell (a path for pipe-pane, an env file value). */
export function shQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * What a tmux session runs: export the assignments in the env file ($0),
 * delete it, then run the session's command ($1) as `sh -c` always did.
 */
const ENV_WRAPPER = 'set -a; . "$0"; set +a; rm -f -- "$0"; exec /bin/sh -c "$1"';

/** Start the server if needed, with dead panes kept (their exit status is read). */
export const PRELUDE: readonly string[] = [
  'start-server',
  ';',
  'set-option',
  '-g',
  'remain-on-exit',
  'on',
];

/**
 * The tmux commands that create session `name` (no leading or trailing
 * `;`): new-session running the env wrapper, then the output log attached
 * in the same command queue (before tmux reads any output of the pane).
 */
export function createCommands(
  name: string,
  config: StartConfig,
  envFile: string,
  logFile: string,
): string[] {
  return [
    'new-session',
    '-d',
    '-s',
    name,
    '-x',
    PANE_COLUMNS,
    '-y',
    PANE_ROWS,
    ...(config.work_dir ? ['-c', tmuxArg(formatLiteral(config.work_dir))] : []),
    '--',
    '/bin/sh',
    '-c',
    ENV_WRAPPER,
    envFile,
    tmuxArg(config.command?.trim() || 'exec "${SHELL:-/bin/sh}"'),
    ';',
    'pipe-pane',
    '-o',
    '-t',
    `=${name}:`,
    tmuxArg(formatLiteral(`exec cat >> ${shQuote(logFile)}`)),
  ];
}

/** The tmux commands that set session `name`'s meta (no leading or trailing `;`). */
export function metaCommands(name: string, meta: Readonly<Record<string, string>>): string[] {
  return Object.entries(meta).flatMap(([k, v], i) => [
    ...(i ? [';'] : []),
    'set-environment',
    '-t',
    `=${name}`,
    k,
    tmuxArg(v),
  ]);
}

/**
 * The directory of session env files, `<stateDir>/env`, made 0700. The
 * session's environment (its token among it) travels in a 0600 file there,
 * never through tmux's argv: the tmux server keeps its first client's argv,
 * readable by every local user in /proc/<pid>/cmdline.
 */
export async function envDir(stateDir: string): Promise<string> {
  const dir = path.join(stateDir, 'env');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  return dir;
}

/** Write `env` as shell assignments to a fresh 0600 file in `dir` (see envDir). */
export async function writeEnvFile(
  dir: string,
  name: string,
  env: Record<string, string>,
): Promise<string> {
  const file = path.join(dir, `${name}.${randomBytes(6).toString('hex')}.env`);
  const text = Object.entries(env)
    .map(([k, v]) => `${k}=${shQuote(v)}\n`)
    .join('');
  await writeFile(file, text, { mode: 0o600, flag: 'wx' });
  return file;
}
