/**
 * Agent-facing work commands: sling (route a bead), hook (what am I working
 * on), prime (my rendered prompt), and the runtime protocol (drain-check,
 * drain-ack, request-restart).
 */
import path from 'node:path';
import { GcError, NotFoundError } from '../../core/index.js';
import { cityRoot, requireServer, withCity, type GlobalOptions } from '../context.js';
import { printJson, printLine } from '../output.js';

export async function sling(
  g: GlobalOptions,
  target: string,
  bead: string,
  o: { nudge?: boolean },
): Promise<void> {
  await withCity(g, 'sling', async (city) => {
    const r = await city.sling(target, bead, o.nudge ? { nudge: true } : {});
    if (g.json) printJson(r);
    else printLine(`${bead} routed to ${target}`);
  });
}

export async function hook(
  g: GlobalOptions,
  o: { inject?: boolean; agent?: string },
): Promise<void> {
  const agent = o.agent ?? process.env.GC_AGENT;
  await withCity(g, 'hook', async (city) => {
    const h = await city.hook(agent);
    if (g.json) {
      printJson(h);
      return;
    }
    const { hookText } = await import('../../dispatch/index.js');
    const text = hookText(h);
    printLine(o.inject ? `<gc-hook>\n${text}\n</gc-hook>` : text);
  });
}

/**
 * The prompt an agent's session starts with, rendered as that session gets
 * it: inside a session, its own name and work dir (for a rig agent, its
 * worktree); outside, the agent's name and default dir.
 */
export async function prime(g: GlobalOptions, o: { agent?: string }): Promise<void> {
  const root = cityRoot(g);
  const { loadCityConfig } = await import('../../config/index.js');
  const { citySpec } = await import('../../controller/index.js');
  const loaded = await loadCityConfig(path.join(root, 'city.toml'));
  const name = o.agent ?? process.env.GC_AGENT;
  if (!name)
    throw new GcError('invalid', 'no agent: pass --agent or run inside a session (GC_AGENT)');
  const agent = citySpec(loaded).agents.find((a) => a.name === name);
  if (!agent) throw new NotFoundError('agent', name, { fix: 'gc config show lists the agents' });
  const inSession = process.env.GC_AGENT === name && process.env.GC_SESSION_NAME;
  const session = inSession ? process.env.GC_SESSION_NAME! : name;
  const workDir = inSession ? process.cwd() : (agent.start.work_dir ?? root);
  const text = agent.promptFor(session, workDir) ?? '';
  if (g.json) printJson({ agent: name, session, work_dir: workDir, prompt: text });
  else
    printLine(
      text ||
        `(agent ${name} starts with no prompt: it has a start_command and no prompt_template)`,
    );
}

export async function runtime(
  g: GlobalOptions,
  op: 'drain-check' | 'drain-ack' | 'request-restart',
): Promise<void> {
  const city = await requireServer(g);
  if (op === 'drain-check') {
    const r = await city.call<{ draining: boolean; since: number | null }>(
      'GET',
      '/v0/runtime/drain-check',
    );
    if (g.json) printJson(r);
    else
      printLine(
        r.draining
          ? `draining since ${new Date((r.since ?? 0) * 1000).toISOString()}`
          : 'not draining',
      );
    // Like test(1): 0 when the agent should wind down.
    if (!r.draining) process.exitCode = 1;
    return;
  }
  const r = await city.call('POST', `/v0/runtime/${op}`);
  if (g.json) printJson(r);
  else printLine(op === 'drain-ack' ? 'drain acknowledged' : 'restart requested');
}
