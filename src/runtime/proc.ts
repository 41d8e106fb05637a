/**
 * The host's process table, read from /proc (Linux) or `ps` elsewhere, for
 * the questions providers ask: which processes descend from a session, do
 * any of them have a given name, and kill them all.
 */
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { mapLimit, runFile } from '../core/index.js';

/**
 * How many /proc files are read at once. A fleet host has thousands of
 * processes; opening all their stat files together ran out of descriptors
 * (EMFILE), and a scan must never lose a process to that.
 */
const READ_LIMIT = 32;

/** The process went away while it was read (its /proc entry is gone). */
function gone(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ESRCH';
}

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
      const argv = (
        await readFile(`/proc/${pid}/cmdline`, 'utf8').catch((e: unknown) => {
          if (gone(e)) return '';
          throw e;
        })
      )
        .split('\0')
        .filter(Boolean);
      for (const a of argv.slice(0, 2)) info.names.push(path.basename(a));
    }
    return info;
  } catch (e) {
    if (gone(e)) return undefined; // exited while we looked
    // Anything else (EMFILE, EACCES on stat) would silently drop a live
    // process from the table, and a stop would leave it running.
    throw e;
  }
}

/** Every process on the host. */
export async function listProcesses(withNames = false): Promise<ProcInfo[]> {
  if (process.platform === 'linux') {
    const entries = await readdir('/proc');
    const pids = entries.filter((e) => /^\d+$/.test(e)).map(Number);
    const infos = new Array<ProcInfo | undefined>(pids.length);
    await mapLimit(pids, READ_LIMIT, async (p, i) => {
      infos[i] = await readProc(p, withNames);
    });
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

/** A process table indexed for tree lookups (built once per scan, shared by every root). */
export interface ProcIndex {
  byPid: Map<number, ProcInfo>;
  byParent: Map<number, ProcInfo[]>;
  byGroup: Map<number, ProcInfo[]>;
  bySession: Map<number, ProcInfo[]>;
}

export function indexProcesses(procs: readonly ProcInfo[]): ProcIndex {
  const add = (m: Map<number, ProcInfo[]>, k: number, p: ProcInfo) => {
    const list = m.get(k);
    if (list) list.push(p);
    else m.set(k, [p]);
  };
  const index: ProcIndex = {
    byPid: new Map(),
    byParent: new Map(),
    byGroup: new Map(),
    bySession: new Map(),
  };
  for (const p of procs) {
    index.byPid.set(p.pid, p);
    add(index.byParent, p.ppid, p);
    add(index.byGroup, p.pgid, p);
    add(index.bySession, p.sid, p);
  }
  return index;
}

/**
 * `root` and everything below it: its descendants by parent link, plus any
 * process still in its process group or session (children re-parented to
 * init after their parent died are found that way).
 */
export function processTree(root: number, procs: readonly ProcInfo[] | ProcIndex): ProcInfo[] {
  const index = Array.isArray(procs) ? indexProcesses(procs) : (procs as ProcIndex);
  const found = new Map<number, ProcInfo>();
  for (const p of [...(index.byGroup.get(root) ?? []), ...(index.bySession.get(root) ?? [])]) {
    found.set(p.pid, p);
  }
  const self = index.byPid.get(root);
  if (self) found.set(root, self);
  const queue = [...found.keys(), root];
  while (queue.length) {
    const pid = queue.pop()!;
    for (const c of index.byParent.get(pid) ?? []) {
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

interface Reaping {
  root: number;
  graceUntil: number;
  termed: boolean;
  kills: number;
  done: () => void;
}

/**
 * Every tree being stopped shares one process-table scan per poll: a fleet
 * of N stops costs one /proc read every 25 ms, not N, and their grace
 * windows run at the same time.
 */
class Reaper {
  private readonly pending = new Set<Reaping>();
  private running = false;
  /** Process-table scans made (for tests: they count, they do not time). */
  scans = 0;

  kill(root: number, graceMs: number): Promise<void> {
    return new Promise((done) => {
      this.pending.add({ root, graceUntil: Date.now() + graceMs, termed: false, kills: 0, done });
      if (!this.running) {
        this.running = true;
        this.loop().catch(() => this.release());
      }
    });
  }

  private release(): void {
    this.running = false;
    for (const r of this.pending) r.done();
    this.pending.clear();
  }

  private async loop(): Promise<void> {
    while (this.pending.size) {
      const procs = await listProcesses();
      this.scans++;
      const index = indexProcesses(procs);
      const now = Date.now();
      for (const r of [...this.pending]) {
        const tree = processTree(r.root, index).filter(
          (p) => p.state !== 'Z' && p.pid !== process.pid,
        );
        const finish = () => {
          this.pending.delete(r);
          r.done();
        };
        if (tree.length === 0) finish();
        else if (!r.termed) {
          signalAll(
            tree.map((p) => p.pid),
            'SIGTERM',
          );
          r.termed = true;
        } else if (now >= r.graceUntil) {
          // Past the grace: SIGKILL what is left (and what appeared meanwhile), a few times.
          if (r.kills >= 5) finish();
          else {
            signalAll(
              tree.map((p) => p.pid),
              'SIGKILL',
            );
            r.kills++;
          }
        }
      }
      if (this.pending.size) await sleep(pollMs(this.pending));
    }
    this.running = false;
  }
}

/** Poll faster while some tree is past its grace (SIGKILL rounds), else every 25 ms. */
function pollMs(pending: Set<Reaping>): number {
  const now = Date.now();
  for (const r of pending) if (r.termed && now >= r.graceUntil) return 20;
  return 25;
}

const reaper = new Reaper();

/** Scans the shared reaper has made so far (tests). */
export function reaperScans(): number {
  return reaper.scans;
}

/**
 * Stop the whole tree of `root`: SIGTERM, wait up to `graceMs` for it to
 * exit, then SIGKILL whatever is left (including processes that appeared
 * meanwhile). Resolves when none is left alive or after the last SIGKILL
 * round. Concurrent calls share their process-table scans (Reaper).
 */
export function killTree(root: number, graceMs: number): Promise<void> {
  return reaper.kill(root, graceMs);
}
