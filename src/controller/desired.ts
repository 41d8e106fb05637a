/**
 * desiredState: which sessions should exist right now. Pure: it takes the
 * resolved city, this tick's facts (work per route, scale-check answers) and
 * the runtime snapshot, and returns a list; it never calls anything.
 */
import type { SessionSnapshot, StartConfig } from '../runtime/index.js';
import type { Workload } from '../store/index.js';
import type { AgentSpec, CitySpec } from './spec.js';

export interface TickFacts {
  workload: Workload;
  /** scale_check answers by agent: a number, or undefined when the check failed. */
  scale: ReadonlyMap<string, number | undefined>;
  /** Agents held back (a tripped budget): suspended as if city.toml said so. */
  held?: ReadonlySet<string>;
}

export interface DesiredSession {
  name: string;
  agent: string;
  rig: string | undefined;
  /** Pool slot (1-based); undefined for singletons. */
  slot: number | undefined;
  config: StartConfig;
  fingerprint: string;
  dependsOn: string[];
  idleTimeoutMs: number | undefined;
  drainTimeoutMs: number;
}

export type CapLevel = 'agent' | 'rig' | 'workspace';

export interface DesiredState {
  sessions: DesiredSession[];
  /** Sessions that demand asked for but a cap refused. */
  capped: { session: string; agent: string; cap: CapLevel }[];
  /** Per pool: the target count and where it came from. */
  pools: { agent: string; target: number; source: 'demand' | 'scale_check' | 'no change' }[];
}

/** Pool session names are `<agent>-<n>`. */
export function poolSessionName(agent: string, slot: number): string {
  return `${agent}-${slot}`;
}

/** The agent a session name belongs to, given the city's agents. */
export function agentOfSession(spec: CitySpec, session: string): AgentSpec | undefined {
  for (const a of spec.agents) {
    if (a.pool ? new RegExp(`^${a.name}-\\d+$`).test(session) : session === a.name) return a;
  }
  return undefined;
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, n));
}

export function desiredState(
  spec: CitySpec,
  facts: TickFacts,
  snapshot: readonly SessionSnapshot[],
): DesiredState {
  const out: DesiredState = { sessions: [], capped: [], pools: [] };
  if (spec.suspended) return out;
  const alive = new Set(snapshot.filter((s) => s.alive).map((s) => s.name));
  const routed = new Map(facts.workload.routed.map((r) => [r.routed_to, r]));
  const claims = new Map(facts.workload.claims.map((c) => [c.assignee, c.in_progress]));
  const perRig = new Map<string, number>();
  let total = 0;

  const admit = (a: AgentSpec, name: string, slot: number | undefined): void => {
    const rigCap = a.rig ? spec.rigCaps.get(a.rig) : undefined;
    if (total >= spec.workspaceCap) {
      out.capped.push({ session: name, agent: a.name, cap: 'workspace' });
      return;
    }
    if (a.rig && rigCap !== undefined && (perRig.get(a.rig) ?? 0) >= rigCap) {
      out.capped.push({ session: name, agent: a.name, cap: 'rig' });
      return;
    }
    total++;
    if (a.rig) perRig.set(a.rig, (perRig.get(a.rig) ?? 0) + 1);
    out.sessions.push({
      name,
      agent: a.name,
      rig: a.rig,
      slot,
      config: a.start,
      fingerprint: a.fingerprint,
      dependsOn: a.dependsOn,
      idleTimeoutMs: a.idleTimeoutMs,
      drainTimeoutMs: a.drainTimeoutMs,
    });
  };

  for (const a of spec.agents) {
    if (a.suspended || facts.held?.has(a.name) || (a.rig && spec.suspendedRigs.has(a.rig))) {
      continue;
    }
    const work = routed.get(a.name);
    const demand = (work?.ready ?? 0) + (work?.in_progress ?? 0);
    if (!a.pool) {
      // An agent with an idle timeout, or on demand, sleeps until work is routed to it.
      const sleeps = a.idleTimeoutMs !== undefined || a.onDemand === true;
      if (sleeps && demand === 0 && !alive.has(a.name)) continue;
      admit(a, a.name, undefined);
      continue;
    }
    const slotPattern = new RegExp(`^${a.name}-\\d+$`);
    const slotsAlive = [...alive].filter((n) => slotPattern.test(n));
    let target: number;
    let source: DesiredState['pools'][number]['source'];
    if (a.scaleCheck !== undefined) {
      const answer = facts.scale.get(a.name);
      if (answer === undefined) {
        target = slotsAlive.length;
        source = 'no change';
      } else {
        target = answer;
        source = 'scale_check';
      }
    } else {
      target = demand;
      source = 'demand';
    }
    const wanted = clamp(target, a.min, Number.MAX_SAFE_INTEGER);
    const count = Math.min(wanted, a.max);
    out.pools.push({ agent: a.name, target: count, source });
    // Keep busy sessions first, then other live ones, then fill the lowest free slots.
    const slotOf = (n: string) => Number(n.slice(a.name.length + 1));
    const busy = slotsAlive
      .filter((n) => (claims.get(n) ?? 0) > 0)
      .sort((x, y) => slotOf(x) - slotOf(y));
    const idle = slotsAlive.filter((n) => !busy.includes(n)).sort((x, y) => slotOf(x) - slotOf(y));
    const chosen = [...busy, ...idle].slice(0, Math.max(count, busy.length));
    const used = new Set(chosen.map(slotOf));
    for (let slot = 1; chosen.length < count; slot++) {
      if (!used.has(slot)) chosen.push(poolSessionName(a.name, slot));
    }
    for (const n of chosen.sort((x, y) => slotOf(x) - slotOf(y))) admit(a, n, slotOf(n));
    for (let i = count; i < wanted; i++) {
      out.capped.push({ session: poolSessionName(a.name, i + 1), agent: a.name, cap: 'agent' });
    }
  }
  return out;
}
