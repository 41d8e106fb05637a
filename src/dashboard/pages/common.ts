/** What several pages share: sessions with their rigs, and the city's rigs. */
import type { SessionStatus } from '../../controller/index.js';
import type { PageCtx } from '../page.js';

export interface SessionRow extends SessionStatus {
  rig: string;
}

/** Every session the controller knows, with its agent's rig ("" for city agents), by name. */
export function sessionRows(ctx: PageCtx): SessionRow[] {
  const rigOf = new Map(ctx.host.spec.agents.map((a) => [a.name, a.rig ?? '']));
  return ctx.host.controller
    .status()
    .sessions.map((s) => ({ ...s, rig: rigOf.get(s.agent ?? '') ?? '' }))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** A query parameter, trimmed ("" when absent). */
export const param = (ctx: PageCtx, name: string): string =>
  (ctx.url.searchParams.get(name) ?? '').trim().slice(0, 200);

/** Every session in the states that need a human. */
export const NEEDS_HUMAN = new Set(['quarantined', 'dead']);
