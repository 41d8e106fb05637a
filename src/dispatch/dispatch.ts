/**
 * Dispatch: routing work to agents (sling) and telling an agent what its
 * work is (hook). Both are store queries and writes through CityOps; the
 * caller pokes the controller so a pool wakes for new work at once.
 */
import { NotFoundError, ValidationError } from '../core/index.js';
import type { CityOps } from '../city/index.js';
import { ROUTED_TO, type Bead } from '../store/index.js';
import { holdReasons, type PendingBeads } from './aware.js';

export interface SlingResult {
  bead: Bead;
  target: string;
}

/**
 * Route `beadId` to `target` (an agent or pool name): sets `gc.routed_to`.
 * `knownTargets` are the city's agent names; anything else is refused with
 * a suggestion, so a typo never strands work.
 */
export async function sling(
  ops: CityOps,
  actor: string,
  target: string,
  beadId: string,
  knownTargets: readonly string[],
): Promise<SlingResult> {
  if (!knownTargets.includes(target)) {
    const { suggest } = await import('../core/index.js');
    const hint = suggest(target, knownTargets);
    throw new NotFoundError('agent', target, {
      fix: hint ? `did you mean ${hint}?` : `known agents: ${knownTargets.join(', ') || '(none)'}`,
    });
  }
  const bead = await ops.store.get(beadId);
  if (bead.status === 'closed') {
    throw new ValidationError(`bead ${beadId} is closed; reopen it before routing it`, {
      where: 'bead',
    });
  }
  const updated = await ops.setMetadata(actor, beadId, ROUTED_TO, target);
  return { bead: updated, target };
}

export interface HookResult {
  actor: string;
  /** The agent (or pool) whose routed work was looked at, when one was. */
  agent?: string;
  /** Beads the caller holds (in progress), oldest claim first. */
  claimed: Bead[];
  /** When it holds nothing: ready beads routed to its agent or assigned to it. */
  ready: Bead[];
  /** Ready beads held back (their paths overlap work in flight), with why; they come last. */
  held?: Record<string, string>;
}

/**
 * The caller's current work: its in-progress claims; if none, the ready
 * beads routed to its agent (pool sessions share their agent's route) or
 * assigned to it.
 */
export async function hook(
  ops: CityOps,
  actor: string,
  agent: string | undefined,
  limit = 10,
  pending?: PendingBeads,
): Promise<HookResult> {
  const claimed = (await ops.store.list({ status: 'in_progress', assignee: actor, limit })).items;
  const who = { actor, ...(agent ? { agent } : {}) };
  if (claimed.length) return { ...who, claimed, ready: [] };
  const ready: Bead[] = [];
  if (agent) {
    ready.push(
      ...(await ops.store.ready({ unassigned: true, metadata: { [ROUTED_TO]: agent }, limit }))
        .items,
    );
  }
  if (ready.length < limit) {
    ready.push(...(await ops.store.ready({ assignee: actor, limit: limit - ready.length })).items);
  }
  if (pending) {
    const held = await holdReasons(ops, ready, pending);
    if (Object.keys(held).length) {
      const order = [...ready.filter((b) => !held[b.id]), ...ready.filter((b) => held[b.id])];
      return { ...who, claimed, ready: order, held };
    }
  }
  return { ...who, claimed, ready };
}

/** Text for agent hooks (`gc hook --inject`): what to work on, as a prompt. */
export function hookText(h: HookResult): string {
  if (h.claimed.length) {
    return [
      `You (${h.actor}) are working on:`,
      ...h.claimed.map(
        (b) =>
          `- ${b.id}: ${b.title}${b.description ? `\n  ${b.description.split('\n').join('\n  ')}` : ''}`,
      ),
      'When a bead is done, close it: gc bead close <id>',
    ].join('\n');
  }
  if (h.ready.length) {
    return [
      `Ready work for ${h.actor}:`,
      ...h.ready.map(
        (b) =>
          `- ${b.id} (P${b.priority}): ${b.title}${h.held?.[b.id] ? ` [${h.held[b.id]}]` : ''}`,
      ),
      'Claim one before starting: gc bead claim <id>',
    ].join('\n');
  }
  if (h.agent && h.agent !== h.actor) {
    return `No work for ${h.agent} right now: nothing is routed to it, and ${h.actor} holds nothing and has nothing assigned.`;
  }
  return `No work for ${h.actor} right now.`;
}
