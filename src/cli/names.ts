/**
 * Names as people type them: an agent as `name` or qualified by its rig as
 * `rig/name` (Gas City's form), and a name given either as a positional
 * argument or as its older flag.
 */
import path from 'node:path';
import { NotFoundError, ValidationError, suggest } from '../core/index.js';
import { cityRoot, type GlobalOptions } from './context.js';

/** The one name given as `positional` or `--flag`; both, when they differ, is an error. */
export function oneName(
  positional: string | undefined,
  flag: string | undefined,
  flagName: string,
): string | undefined {
  if (positional !== undefined && flag !== undefined && positional !== flag) {
    throw new ValidationError(
      `names ${JSON.stringify(flag)}, and the argument names ${JSON.stringify(positional)}: give one`,
      { where: flagName },
    );
  }
  return positional ?? flag;
}

/** What a reference needs of the city's agents. */
export interface AgentNames {
  name: string;
  rig: string | undefined;
  /** The name users write for an agent composed from a pack (`rig/name`, `binding.name`). */
  qualified?: string | undefined;
}

/**
 * The agent `ref` names: `name`, or `rig/name` (the agent must work in that
 * rig). A plain name is returned as given (it may be a pool, a human or a
 * mailbox the caller checks); a qualified one must match an agent.
 */
export function resolveAgentRef(agents: readonly AgentNames[], ref: string): string {
  const composed = agents.find((a) => a.qualified === ref && a.qualified !== a.name);
  if (composed) return composed.name;
  const slash = ref.indexOf('/');
  if (slash < 0) return ref;
  const rig = ref.slice(0, slash);
  const name = ref.slice(slash + 1);
  if (!rig || !name || name.includes('/')) {
    throw new ValidationError(`expected AGENT or RIG/AGENT, got ${JSON.stringify(ref)}`, {
      where: 'agent',
    });
  }
  const found = agents.find((a) => a.name === name && a.rig === rig);
  if (found) return found.name;
  const qualified = agents
    .filter((a) => a.rig)
    .map((a) => (a.qualified && a.qualified !== a.name ? a.qualified : `${a.rig}/${a.name}`));
  const hint = suggest(ref, qualified);
  const other = agents.find((a) => a.name === name);
  throw new NotFoundError('agent', ref, {
    fix: other
      ? `agent ${name} works ${other.rig ? `in rig ${other.rig}` : 'in no rig'}`
      : hint
        ? `did you mean ${hint}?`
        : 'gc config show lists the agents',
  });
}

/** The city's agent `ref` names (`name` or `rig/name`); NotFoundError, with a suggestion, when none. */
export function requireAgent<A extends AgentNames>(agents: readonly A[], ref: string): A {
  const name = resolveAgentRef(agents, ref);
  const agent = agents.find((a) => a.name === name);
  if (agent) return agent;
  const hint = suggest(
    name,
    agents.map((a) => a.name),
  );
  throw new NotFoundError('agent', name, {
    fix: hint ? `did you mean ${hint}?` : 'gc config show lists the agents',
  });
}

/** `ref` resolved against the city's agents when it is qualified (loads city.toml only then). */
export async function agentRef(g: GlobalOptions, ref: string): Promise<string>;
export async function agentRef(
  g: GlobalOptions,
  ref: string | undefined,
): Promise<string | undefined>;
export async function agentRef(
  g: GlobalOptions,
  ref: string | undefined,
): Promise<string | undefined> {
  if (ref === undefined || !/[/.]/.test(ref)) return ref;
  const { loadCityConfig } = await import('../config/index.js');
  const { citySpec } = await import('../controller/index.js');
  const loaded = await loadCityConfig(path.join(cityRoot(g), 'city.toml'));
  return resolveAgentRef(citySpec(loaded).agents, ref);
}
