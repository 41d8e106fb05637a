/** Whether a mail recipient names anyone the city knows, for a warning on send. */
import type { CitySpec } from './spec.js';
import { agentOfSession } from './desired.js';

/** The registry part: which names have keys (registered agents, operators). */
export interface KnownNames {
  has(kind: 'agent' | 'operator' | 'admin', name: string): boolean;
}

/**
 * A warning when `to` is not an agent or pool of city.toml, a session of
 * one, or a registered agent or operator; undefined when it is. Mail to an
 * unknown name is still delivered (a person may read it under any name),
 * but a typo should not go unnoticed.
 */
export function unknownRecipientWarning(
  spec: CitySpec,
  keys: KnownNames | undefined,
  to: string,
): string | undefined {
  if (spec.agents.some((a) => a.name === to)) return undefined;
  if (agentOfSession(spec, to)) return undefined;
  if (keys && (keys.has('agent', to) || keys.has('operator', to) || keys.has('admin', to))) {
    return undefined;
  }
  return `no agent, pool, session or registered agent is named ${to}; the message waits in that mailbox (gc mail inbox --agent ${to})`;
}
