/**
 * Gate processes outlive a server killed with kill -9 (they run in their own
 * process group), and would go on running in the scratch worktree the next
 * server reuses. So each running gate's process group is recorded in a file
 * (its pgid and the kernel's start time of its leader, so a recycled pid is
 * never mistaken for it), removed when the gate ends, and at start every
 * group still recorded is killed.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Start time of a process in clock ticks since boot (field 22 of /proc/<pid>/stat), or ''. */
function startTime(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields follow the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? '';
  } catch {
    return '';
  }
}

export class GatePids {
  constructor(private readonly dir: string) {}

  /** A gate's group started. Best effort: a failure to record is not a failed gate. */
  add(pgid: number): void {
    try {
      mkdirSync(this.dir, { recursive: true });
      writeFileSync(path.join(this.dir, String(pgid)), startTime(pgid));
    } catch {
      // the group is still killed when the gate ends or is cancelled
    }
  }

  remove(pgid: number): void {
    rmSync(path.join(this.dir, String(pgid)), { force: true });
  }

  /** Kill every recorded group whose leader is still the process that was recorded; returns their pgids. */
  killLeftovers(): number[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return [];
    }
    const killed: number[] = [];
    for (const name of names) {
      const pgid = Number(name);
      const file = path.join(this.dir, name);
      if (Number.isInteger(pgid) && pgid > 1) {
        const recorded = readFileSync(file, 'utf8').trim();
        if (recorded && startTime(pgid) === recorded) {
          try {
            process.kill(-pgid, 'SIGKILL');
            killed.push(pgid);
          } catch {
            // already gone
          }
        }
      }
      rmSync(file, { force: true });
    }
    return killed;
  }
}
