/** The demo's leftover check: processes of a demo city still alive after it stopped. */
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/**
 * Processes of the demo still alive: any whose environment names the demo
 * city (agents and what they started) or whose command line does (the
 * server, the city's tmux server). Linux /proc; elsewhere 0 is not claimed:
 * -1 means "could not check".
 */
export function leftoverProcesses(root: string): number {
  if (!existsSync('/proc/self/environ')) return -1;
  const env = Buffer.from(`GC_CITY_ROOT=${root}\0`);
  let n = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`);
      if (cmd.length === 0) continue; // kernel thread or zombie
      const environ = readFileSync(`/proc/${pid}/environ`);
      if (environ.includes(env) || cmd.includes(Buffer.from(root))) n++;
    } catch {
      // gone, or not ours to read
    }
  }
  return n;
}
