/**
 * Agent-facing work commands: sling (route a bead), hook (what am I working
 * on), prime (my rendered prompt), and the runtime protocol (drain-check,
 * drain-ack, request-restart).
 */
import path from 'node:path';
import { GcError, ValidationError } from '../../core/index.js';
import type { FormulaSlingResult } from '../../dispatch/index.js';
import { cityRoot, requireServer, withCity, type GlobalOptions } from '../context.js';
import { printJson, printLine } from '../output.js';

/** A bead id as the store makes them (`gc-12`, `app-3k.2`): one token, prefix, dash. */
const BEAD_ID = /^[A-Za-z0-9]+(-[A-Za-z0-9]+)+(\.[0-9]+)*$/;

export interface SlingArgs {
  nudge?: boolean;
  text?: boolean;
  formula?: boolean;
  on?: string;
  var?: string[];
  title?: string;
  wisp?: string | boolean;
  /** commander's --no-convoy */
  convoy?: boolean;
  owned?: boolean;
}

/** The default wisp lifetime after it completes (`--wisp` with no duration). */
export const DEFAULT_WISP = '1h';

/**
 * `gc sling TARGET BEAD|TEXT`: route a bead, or (Gas City's habit) text
 * that becomes a new bead routed to TARGET, in its own convoy. Text is
 * anything that is not a single id-shaped word, or anything with --text.
 * `--formula`: the second argument is a formula, poured as a molecule whose
 * steps go to TARGET (`--on BEAD`: the molecule works on that bead).
 * `--on FORMULA` without --formula: the formula is poured on the bead.
 */
export async function sling(
  g: GlobalOptions,
  target: string,
  what: string,
  o: SlingArgs,
): Promise<void> {
  const { agentRef } = await import('../names.js');
  if (o.owned && o.convoy === false) {
    throw new ValidationError('--owned needs a convoy; it cannot go with --no-convoy', {
      where: '--owned',
    });
  }
  if (!o.formula && o.on === undefined) {
    for (const [flag, v] of [
      ['--var', o.var?.length ? o.var : undefined],
      ['--title', o.title],
      ['--wisp', o.wisp],
    ] as const) {
      if (v !== undefined) {
        throw new ValidationError('only goes with --formula or --on FORMULA', { where: flag });
      }
    }
  }
  const agent = await agentRef(g, target);
  const convoy = {
    ...(o.convoy === false ? { convoy: false } : {}),
    ...(o.owned ? { owned: true } : {}),
  };
  await withCity(g, 'sling', async (city) => {
    if (o.formula || o.on !== undefined) {
      let bead = o.formula ? o.on : what;
      let created: { id: string; title: string } | undefined;
      if (!o.formula && (o.text === true || !BEAD_ID.test(what))) {
        created = await city.createBead({ title: what });
        bead = created.id;
      }
      const r = await city.slingFormula(agent, {
        ...formulaArgs(o),
        formula: o.formula ? what : o.on!,
        ...(bead !== undefined ? { on: bead } : {}),
        ...convoy,
        ...(o.nudge ? { nudge: true } : {}),
      });
      if (g.json) printJson(created ? { ...r, created } : r);
      else {
        if (created) printLine(`created ${created.id} (${JSON.stringify(what)})`);
        printLine(pouredText(r));
      }
      return;
    }
    const asText = o.text === true || !BEAD_ID.test(what);
    let bead = what;
    let created: { id: string; title: string } | undefined;
    if (asText) {
      created = await city.createBead({ title: what });
      bead = created.id;
    }
    const r = await city.sling(agent, bead, {
      ...(o.nudge ? { nudge: true } : {}),
      ...convoy,
      ...(o.formula === false ? { formula: false } : {}),
    });
    const inConvoy = r.convoy ? ` (convoy ${r.convoy})` : '';
    if (!g.json && r.molecule) {
      if (created) printLine(`created ${bead} (${JSON.stringify(what)})`);
      printLine(
        `${bead}: ${agent}'s default formula ${r.formula} poured on it as molecule ${r.molecule}, its steps routed to ${agent}${inConvoy}`,
      );
      return;
    }
    if (g.json) printJson(created ? { ...r, created } : r);
    else if (created)
      printLine(`created ${bead} (${JSON.stringify(what)}), routed to ${agent}${inConvoy}`);
    else printLine(`${bead} routed to ${agent}${inConvoy}`);
  });
}

/** --var, --title and --wisp as a formula sling takes them. */
export function formulaArgs(o: Pick<SlingArgs, 'var' | 'title' | 'wisp'>): {
  vars: Record<string, string>;
  title?: string;
  wisp?: string;
} {
  const vars: Record<string, string> = {};
  for (const p of o.var ?? []) {
    const eq = p.indexOf('=');
    if (eq <= 0) {
      throw new ValidationError(`expected KEY=VALUE, got ${JSON.stringify(p)}`, { where: '--var' });
    }
    vars[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return {
    vars,
    ...(o.title !== undefined ? { title: o.title } : {}),
    ...(o.wisp !== undefined ? { wisp: o.wisp === true ? DEFAULT_WISP : String(o.wisp) } : {}),
  };
}

/** A poured molecule, for people: its root, where it went, its steps. */
export function pouredText(r: FormulaSlingResult): string {
  const formula = r.root.metadata['gc.formula'] ?? '';
  const lines = [
    `molecule ${r.root.id} (${formula}): ${r.steps.length} step(s)` +
      (r.target ? `, routed to ${r.target}` : ', cooked (nothing routed)') +
      (r.convoy ? `; convoy ${r.convoy}` : '') +
      (r.root.labels.includes('wisp') ? '; a wisp' : ''),
  ];
  for (const s of r.steps) {
    lines.push(`  ${s.id}  ${s.metadata['gc.step_ref'] ?? ''}  ${s.title}`);
  }
  return lines.join('\n');
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
