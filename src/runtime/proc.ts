/**
 * The host's process table, read from /proc (Linux) or `ps` elsewhere, for
 * the questions providers ask: which processes descend from a session, do
 * any of them have a given name, and kill them all.
 */
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { runFile } from '../core/index.js';

export interface ProcInfo {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  state: string;
  /** Names the process answers to: comm, basename of argv[0] and argv[1]. */
  names: string[];
}

async function readProc(pid: number, withNames: boolean): Promise<ProcInfo | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // comm is in parentheses and may itself hold spaces or parentheses.
    const open = stat.indexOf('(');
    const close = stat.lastIndexOf(')');
    const comm = stat.slice(open + 1, close);
    const rest = stat.slice(close + 2).split(' ');
    const info: ProcInfo = {
      pid,
      state: rest[0] ?? '?',
      ppid: Number(rest[1]),
      pgid: Number(rest[2]),
      sid: Number(rest[3]),
      names: [comm],
    };
    if (withNames) {
      const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''))
        .split('\0')
        .filter(Boolean);
      for (const a of argv.slice(0, 2)) info.names.push(path.basename(a));
    }
    return info;
  } catch {
    return undefined; // exited while we looked
  }
}

/** Every process on the host. */
export async function listProcesses(withNames = false): Promise<ProcInfo[]> {
  if (process.platform === 'linux') {
    const entries = await readdir('/proc');
    const pids = entries.filter((e) => /^\d+$/.test(e)).map(Number);
    const infos = await Promise.all(pids.map((p) => readProc(p, withNames)));
    return infos.filter((i): i is ProcInfo => i !== undefined);
  }
  const r = await runFile('ps', ['-A', '-o', 'pid=,ppid=,pgid=,sess=,state=,comm=']);
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => f.length >= 6)
    .map(([pid, ppid, pgid, sid, state, ...comm]) => ({
      pid: Number(pid),
      ppid: Number(ppid),
      pgid: Number(pgid),
      sid: Number(sid),
      state: state ?? '?',
      names: [path.basename(comm.join(' '))],
    }));
}

/**
 * `root` and everything below it: its descendants by parent link, plus any
 * process still in its process group or session (children re-parented to
 * init after their parent died are found that way).
 */
export function processTree(root: number, procs: readonly ProcInfo[]): ProcInfo[] {
  const byParent = new Map<number, ProcInfo[]>();
  for (const p of procs) {
    const list = byParent.get(p.ppid);
    if (list) list.push(p);
    else byParent.set(p.ppid, [p]);
  }
  const found = new Map<number, ProcInfo>();
  for (const p of procs) {
    if (p.pid === root || p.pgid === root || p.sid === root) found.set(p.pid, p);
  }
  const queue = [...found.keys(), root];
  while (queue.length) {
    const pid = queue.pop()!;
    for (const c of byParent.get(pid) ?? []) {
      if (!found.has(c.pid)) {
        found.set(c.pid, c);
        queue.push(c.pid);
      }
    }
  }
  return [...found.values()];
}

/** A process exists and is not a zombie. */
export async function pidAlive(pid: number): Promise<boolean> {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (process.platform !== 'linux') return true;
  const info = await readProc(pid, false);
  return info !== undefined && info.state !== 'Z' && info.state !== 'X';
}

/** Whether any process in the tree of `root` answers to one of `names`. */
export async function treeHasName(root: number, names: readonly string[]): Promise<boolean> {
  const tree = processTree(root, await listProcesses(true));
  const wanted = new Set(names);
  return tree.some((p) => p.state !== 'Z' && p.names.some((n) => wanted.has(n)));
}

function signalAll(pids: readonly number[], signal: NodeJS.Signals): void {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // gone already
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Stop the whole tree of `root`: SIGTERM, wait up to `graceMs` for it to
 * exit, then SIGKILL whatever is left (including processes that appeared
 * meanwhile). Resolves when none is left alive or after a final SIGKILL.
 */
export async function killTree(root: number, graceMs: number): Promise<void> {
  const alive = async () =>
    processTree(root, await listProcesses()).filter(
      (p) => p.state !== 'Z' && p.pid !== process.pid,
    );
  let procs = await alive();
  if (procs.length === 0) return;
  signalAll(
    procs.map((p) => p.pid),
    'SIGTERM',
  );
  const until = Date.now() + graceMs;
  while (Date.now() < until) {
    await sleep(25);
    procs = await alive();
    if (procs.length === 0) return;
  }
  for (let i = 0; i < 5 && procs.length; i++) {
    signalAll(
      procs.map((p) => p.pid),
      'SIGKILL',
    );
    await sleep(20);
    procs = await alive();
  }
}
