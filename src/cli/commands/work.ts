/**
 * Agent-facing work commands: sling (route a bead), hook (what am I working
 * on), prime (my rendered prompt), and the runtime protocol (drain-check,
 * drain-ack, request-restart).
 */
import path from 'node:path';
import { GcError } from '../../core/index.js';
import { cityRoot, requireServer, withCity, type GlobalOptions } from '../context.js';
import { printJson, printLine } from '../output.js';

/** A bead id as the store makes them (`gc-12`, `app-3k.2`): one token, prefix, dash. */
const BEAD_ID = /^[A-Za-z0-9]+(-[A-Za-z0-9]+)+(\.[0-9]+)*$/;

/**
 * `gc sling TARGET BEAD|TEXT`: route a bead, or (Gas City's habit) text
 * that becomes a new bead routed to TARGET. Text is anything that is not a
 * single id-shaped word, or anything with --text.
 */
export async function sling(
  g: GlobalOptions,
  target: string,
  what: string,
  o: { nudge?: boolean; text?: boolean },
): Promise<void> {
  const { agentRef } = await import('../names.js');
  const agent = await agentRef(g, target);
  const asText = o.text === true || !BEAD_ID.test(what);
  await withCity(g, 'sling', async (city) => {
    let bead = what;
    let created: { id: string; title: string } | undefined;
    if (asText) {
      created = await city.createBead({ title: what });
      bead = created.id;
    }
    const r = await city.sling(agent, bead, o.nudge ? { nudge: true } : {});
    if (g.json) printJson(created ? { ...r, created } : r);
    else if (created) printLine(`created ${bead} (${JSON.stringify(what)}), routed to ${agent}`);
    else printLine(`${bead} routed to ${agent}`);
  });
}

export async function hook(
  g: GlobalOptions,
  o: { inject?: boolean; agent?: string },
): Promise<void> {
  const { agentRef } = await import('../names.js');
  const agent = await agentRef(g, o.agent ?? process.env.GC_AGENT);
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
export async function prime(
  g: GlobalOptions,
  o: { agent?: string },
  positional?: string,
): Promise<void> {
  const root = cityRoot(g);
  const { loadCityConfig } = await import('../../config/index.js');
  const { citySpec } = await import('../../controller/index.js');
  const { oneName, requireAgent } = await import('../names.js');
  const loaded = await loadCityConfig(path.join(root, 'city.toml'));
  const spec = citySpec(loaded);
  const ref = oneName(positional, o.agent, '--agent') ?? process.env.GC_AGENT;
  if (!ref) {
    throw new GcError('invalid', 'no agent: name one (gc prime AGENT) or run inside a session', {
      fix: 'gc config show lists the agents; inside a session GC_AGENT names it',
    });
  }
  const agent = requireAgent(spec.agents, ref);
  const name = agent.name;
  const inSession = process.env.GC_AGENT === name && process.env.GC_SESSION_NAME;
  const session = inSession ? process.env.GC_SESSION_NAME! : name;
  const workDir = inSession ? process.cwd() : (agent.start.work_dir ?? root);
  const own = agent.promptFor(session, workDir);
  // An agent with no prompt of its own (a start_command, the generic shell)
  // is primed with the default one for where it works.
  const text = own ?? agent.defaultPromptFor(session, workDir);
  if (g.json) {
    printJson({
      agent: name,
      session,
      work_dir: workDir,
      prompt: text,
      default: own === undefined,
    });
    return;
  }
  if (own === undefined) {
    process.stderr.write(
      `gc: agent ${name} has no prompt of its own: this is the default prompt\n`,
    );
  }
  printLine(text);
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
