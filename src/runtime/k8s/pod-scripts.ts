/**
 * What the provider runs inside an agent pod over exec: fixed scripts and
 * argv lists. Values travel as separate argv entries or on stdin, never
 * spliced into a script; the only shell text from outside is the city's own
 * configured commands (pre_start, session_setup), run as the tmux provider
 * runs them.
 */
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import path from 'node:path';
import type { StartConfig } from '../start-config.js';
import { shQuote, tmuxArg } from '../tmux-args.js';
import { TMUX_SESSION } from './pod-spec.js';

const T = TMUX_SESSION;

/** Variables only the start script reads; the agent never sees them. */
const CONTROL = ['GCK8S_COMMAND', 'GCK8S_PROGRAM', 'GCK8S_PRE_START', 'GCK8S_SETUP'];

/**
 * The start exec: stdin is a file of shell assignments (the session's env
 * and the GCK8S_ control values). It runs pre_start, checks the program
 * exists, creates tmux session `main` (dead panes kept) whose pane runs
 * the agent under a wrapper, waits until the wrapper holds its lock (see
 * ENTRYPOINT), runs session_setup, and prints the session's activity time.
 * Exit 127: the program is missing; 96: pre_start failed; 95: tmux failed.
 */
export const START_SCRIPT = [
  'umask 077',
  'd="${TMPDIR:-/tmp}/gc-session"',
  'mkdir -p "$d" || exit 95',
  'cat > "$d/env.session" || exit 95',
  'set -a; . "$d/env.session"; set +a',
  'if [ -n "${GCK8S_PRE_START:-}" ]; then sh -ec "$GCK8S_PRE_START" >&2 || { echo "pre_start failed" >&2; exit 96; }; fi',
  'if [ -n "${GCK8S_PROGRAM:-}" ] && ! command -v "$GCK8S_PROGRAM" >/dev/null 2>&1; then echo "$GCK8S_PROGRAM: command not found in the pod" >&2; exit 127; fi',
  // The pane holds lock gc-agent while the agent runs (taken before it
  // says it started), then records the agent's exit status and lets go:
  // the entrypoint, waiting for the lock, learns the agent ended. The hooks
  // let go too when the wrapper itself is killed or the session closes.
  // The INT handler keeps the wrapper alive when C-c reaches the agent.
  `w='set -a; . "$0"; set +a; rm -f -- "$0"; c=$GCK8S_COMMAND; unset ${CONTROL.join(' ')}; tmux wait-for -L gc-agent; touch "$1.started"; trap : INT; /bin/sh -c "$c"; s=$?; echo "$s" > "$1.exit"; tmux wait-for -U gc-agent; exit "$s"'`,
  `tmux -f /dev/null start-server \\; set-option -g remain-on-exit on \\; set-hook -g pane-died 'wait-for -U gc-agent' \\; set-hook -g session-closed 'wait-for -U gc-agent' \\; new-session -d -s ${T} -x 220 -y 50 -- /bin/sh -c "$w" "$d/env.session" "$d/agent" || exit 95`,
  'i=0; while [ ! -e "$d/agent.started" ] && [ "$i" -lt 300 ]; do sleep 0.1; i=$((i + 1)); done',
  'if [ -n "${GCK8S_SETUP:-}" ]; then sh -c "$GCK8S_SETUP" >&2 || echo "session_setup failed" >&2; fi',
  `tmux display-message -p -t ${T} '#{session_activity}'`,
].join('\n');

/** The stdin of the start exec: env plus control values as shell assignments. */
export function startInput(
  config: StartConfig,
  env: Record<string, string>,
  setup: string,
): string {
  const control: Record<string, string> = {
    GCK8S_COMMAND: config.command?.trim() || 'exec "${SHELL:-/bin/sh}"',
    GCK8S_PROGRAM: programOf(config.command) ?? '',
    GCK8S_PRE_START: (config.pre_start ?? []).join('\n'),
    GCK8S_SETUP: setup,
  };
  return Object.entries({ ...env, ...control })
    .map(([k, v]) => `${k}=${shQuote(v)}\n`)
    .join('');
}

const SHELL_WORDS = new Set(
  '! [ [[ . : alias bg builtin case cd command declare eval exec exit export fg for function if jobs let local read readonly return set shift source test time trap ulimit umask unset until wait while {'.split(
    ' ',
  ),
);

/**
 * The program a simple command runs (after leading VAR=value words), to be
 * looked up before starting; undefined for shell syntax, left to the shell.
 */
export function programOf(command: string | undefined): string | undefined {
  const words = (command ?? '').trim().split(/\s+/);
  let i = 0;
  while (i < words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[i]!)) i++;
  const program = words[i];
  if (!program || SHELL_WORDS.has(program) || /[$`"'\\(){}[\]*?<>|;&~]/.test(program)) {
    return undefined;
  }
  return program;
}

export const activityArgv = (): string[] => [
  'tmux',
  'display-message',
  '-p',
  '-t',
  T,
  '#{session_activity}',
];

export function peekArgv(lines: number): string[] {
  return ['tmux', 'capture-pane', '-p', '-t', T, '-S', lines > 0 ? String(-lines) : '-'];
}

/** Type `text` literally then Enter; multi-line text as one paste (text on stdin). */
export function nudgeArgv(text: string, buffer: string): { argv: string[]; stdin?: string } {
  if (!text.includes('\n')) {
    return {
      argv: [
        'tmux',
        'send-keys',
        '-t',
        T,
        '-l',
        '--',
        tmuxArg(text),
        ';',
        'send-keys',
        '-t',
        T,
        'Enter',
      ],
    };
  }
  return {
    argv: [
      'tmux',
      'load-buffer',
      '-b',
      buffer,
      '-',
      ';',
      'paste-buffer',
      '-p',
      '-d',
      '-b',
      buffer,
      '-t',
      T,
      ';',
      'send-keys',
      '-t',
      T,
      'Enter',
    ],
    stdin: text,
  };
}

export const keysArgv = (keys: readonly string[]): string[] => [
  'tmux',
  'send-keys',
  '-t',
  T,
  ...keys.map(tmuxArg),
];
export const clearArgv = (): string[] => ['tmux', 'clear-history', '-t', T];
export const setMetaArgv = (k: string, v: string): string[] => [
  'tmux',
  'set-environment',
  '-t',
  T,
  k,
  tmuxArg(v),
];
export const getMetaArgv = (k: string): string[] => ['tmux', 'show-environment', '-t', T, k];
export const removeMetaArgv = (k: string): string[] => [
  'tmux',
  'set-environment',
  '-t',
  T,
  '-u',
  k,
];

/** `show-environment` output to the value ("" for unset or removed). */
export function metaValue(stdout: string, key: string): string {
  const line = stdout.replace(/\n$/, '');
  return line.startsWith(`${key}=`) ? line.slice(key.length + 1) : '';
}

/**
 * Whether a process named one of $@ runs in the agent pane's process tree
 * (exit 0 yes, 1 no, 2 no session).
 */
const PROCESS_SCRIPT = [
  `root=$(tmux display-message -p -t ${T} '#{pane_pid}' 2>/dev/null) || exit 2`,
  '[ -n "$root" ] || exit 2',
  'ps -e -o pid= -o ppid= -o comm= | awk -v root="$root" -v names="$*" \'',
  'BEGIN { n = split(names, want, " ") }',
  '{ pid[NR] = $1; pp[NR] = $2; cm[NR] = $3 }',
  'END { tree[root] = 1; more = 1',
  '  while (more) { more = 0; for (i = 1; i <= NR; i++) if (!(pid[i] in tree) && (pp[i] in tree)) { tree[pid[i]] = 1; more = 1 } }',
  '  for (i = 1; i <= NR; i++) if (pid[i] in tree) for (j = 1; j <= n; j++) if (cm[i] == want[j]) found = 1',
  "  exit (found ? 0 : 1) }'",
].join('\n');

export const processArgv = (names: readonly string[]): string[] => [
  '/bin/sh',
  '-c',
  PROCESS_SCRIPT,
  'sh',
  ...names,
];

/** Unpack a tar from stdin into directory $1 (made when missing). */
export const untarArgv = (dir: string): string[] => [
  '/bin/sh',
  '-c',
  'mkdir -p -- "$1" && tar -x -f - -C "$1"',
  'sh',
  dir,
];

/**
 * A ustar archive of `src` (a file or a directory tree) whose entries are
 * named under `as`: what `tar -x` unpacks to copy it into the pod.
 */
export async function tarOf(src: string, as: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  const add = async (file: string, name: string): Promise<void> => {
    const st = await lstat(file);
    if (st.isDirectory()) {
      parts.push(header(`${name}/`, st.mode & 0o7777, 0, '5', ''));
      for (const e of (await readdir(file)).sort()) await add(path.join(file, e), `${name}/${e}`);
    } else if (st.isSymbolicLink()) {
      parts.push(header(name, 0o777, 0, '2', await readlink(file)));
    } else if (st.isFile()) {
      const body = await readFile(file);
      parts.push(header(name, st.mode & 0o7777, body.length, '0', ''), body);
      const pad = (512 - (body.length % 512)) % 512;
      if (pad) parts.push(Buffer.alloc(pad));
    }
  };
  await add(src, as);
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

function header(name: string, mode: number, size: number, type: string, link: string): Buffer {
  const h = Buffer.alloc(512);
  let prefix = '';
  let base = name;
  if (Buffer.byteLength(name) > 100) {
    let i = name.indexOf('/');
    for (; i > 0; i = name.indexOf('/', i + 1)) {
      const p = name.slice(0, i);
      const b = name.slice(i + 1);
      if (b && Buffer.byteLength(p) <= 155 && Buffer.byteLength(b) <= 100) {
        prefix = p;
        base = b;
        break;
      }
    }
    if (i <= 0) throw new Error(`path too long to copy: ${name}`);
  }
  const put = (s: string, off: number, len: number) => h.write(s, off, len, 'utf8');
  const oct = (n: number, len: number) => `${n.toString(8).padStart(len - 1, '0')}\0`;
  put(base, 0, 100);
  put(oct(mode, 8), 100, 8);
  put(oct(0, 8), 108, 8);
  put(oct(0, 8), 116, 8);
  put(oct(size, 12), 124, 12);
  put(oct(Math.floor(Date.now() / 1000), 12), 136, 12);
  put('        ', 148, 8);
  put(type, 156, 1);
  put(link, 157, 100);
  put('ustar\0', 257, 6);
  put('00', 263, 2);
  put(prefix, 345, 155);
  let sum = 0;
  for (const b of h) sum += b;
  put(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 8);
  return h;
}
