/**
 * How the subprocess provider puts sessions into the world. A session is
 * `/bin/sh -c WRAPPER` in its own session id (setsid), its FIFO as stdin,
 * its log as stdout and stderr, with default signal dispositions (so an
 * interrupt reaches the agent).
 *
 * A wave is launched by one small shell per part: the shell forks the
 * sessions, not the city server, whose every fork costs milliseconds of a
 * large process on the event loop. A background job of a non-interactive
 * shell starts with SIGINT and SIGQUIT ignored, so the launcher resets them
 * with `env --default-signal` (GNU coreutils 8.31+) before `setsid`
 * (util-linux). Where either is missing, each session is spawned from this
 * process instead, as before the launcher existed.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { runFile, startProcess } from '../core/index.js';

/** One session to launch; its directory holds its FIFO (`stdin`) and env file. */
export interface Launch {
  dir: string;
  workDir: string;
  log: string;
  command: string;
  /** The session's own environment, a 0600 file the wrapper reads and empties. */
  envFile: string;
}

/**
 * What a session runs: export the assignments in its env file ($1) and
 * empty it (a shell builtin: no process; the empty file goes with the
 * session's directory at stop), run the command ($2), record its exit
 * status ($3). Every value arrives as an argument: never spliced into code.
 */
const WRAPPER =
  'set -a; . "$1"; set +a; : > "$1"; /bin/sh -c "$2"; code=$?; printf %s "$code" > "$3"; exit "$code"';

/**
 * The launcher: the wrapper as $0, then four arguments per session (its
 * directory, work dir, log, command). For each: the session in the
 * background, its pid printed (a "-" line when its FIFO is missing). A
 * background job is no group leader, so setsid runs in place (no fork) and
 * `env` only execs: the printed pid is the session's.
 */
const LAUNCHER = `w=$0
while [ "$#" -ge 4 ]; do
  d=$1; c=$2; l=$3; x=$4; shift 4
  if [ -p "$d/stdin" ]; then
    (cd "$c" && exec env --default-signal=INT,QUIT setsid /bin/sh -c "$w" gc-session "$d/env" "$x" "$d/exit" <>"$d/stdin" >"$l" 2>&1) &
    echo "$!"
  else
    echo -
  fi
done`;

export type LaunchMode = 'shell' | 'each';

let detected: Promise<LaunchMode> | undefined;

/** Whether this machine's env and setsid can run the launcher (checked once). */
export function launchMode(): Promise<LaunchMode> {
  detected ??= runFile('env', ['--default-signal=INT,QUIT', 'setsid', '--version']).then(
    (r) => (r.code === 0 ? 'shell' : 'each'),
    () => 'each' as const,
  );
  return detected;
}

/**
 * Launch `items` (their FIFOs made): one pid per item, in order, or the
 * error that kept it from starting.
 */
export async function launch(
  items: readonly Launch[],
  mode: LaunchMode,
): Promise<(number | Error)[]> {
  if (mode === 'each') return Promise.all(items.map((it) => launchOne(it).catch(asError)));
  const args = items.flatMap((it) => [it.dir, it.workDir, it.log, it.command]);
  const res = await runFile('/bin/sh', ['-c', LAUNCHER, WRAPPER, ...args], {
    timeoutMs: 60_000,
  });
  const pids = res.stdout.split('\n').filter(Boolean);
  return items.map((it, i) => {
    const pid = Number(pids[i]);
    return pid > 0 ? pid : new Error(`${it.dir}: ${res.stderr.trim() || 'no process started'}`);
  });
}

/** One session spawned from this process (detached: its own session id). */
async function launchOne(it: Launch): Promise<number> {
  // Read-write, so the session never reads end-of-file between nudges.
  const stdin = await open(`${it.dir}/stdin`, constants.O_RDWR);
  const log = await open(it.log, 'w');
  try {
    const p = startProcess(
      '/bin/sh',
      ['-c', WRAPPER, 'gc-session', it.envFile, it.command, `${it.dir}/exit`],
      { cwd: it.workDir, detached: true, stdio: [stdin.fd, log.fd, log.fd] },
    );
    const pid = await p.started;
    p.child?.unref();
    return pid;
  } finally {
    await stdin.close();
    await log.close();
  }
}

function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
