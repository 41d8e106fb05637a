/** Routes: API keys and the registry of external agents. */
import type { PrincipalKind } from '../../city/index.js';
import { ValidationError } from '../../core/index.js';
import { webhookUrlProblem } from '../../mail/index.js';
import { validateSessionName } from '../../runtime/index.js';
import type { Router } from '../http.js';
import * as S from '../schemas.js';
import { ADMIN, STAFF, num, only, type RouteKit } from './common.js';

/** Names the city itself acts as (events, mail, merges): never an agent's. */
export const CITY_NAMES: ReadonlySet<string> = new Set([
  'admin',
  'city',
  'controller',
  'gc',
  'human',
  'mail',
  'mayor',
  'operator',
  'refinery',
  'root',
  'system',
]);

/**
 * Why `name` cannot be an external agent's: a name the city acts as, a city
 * agent's name, or a session name a pool of that agent has or may grow
 * into (`<agent>-<n>`).
 */
export function reservedName(
  name: string,
  agents: readonly { name: string }[],
): string | undefined {
  const lower = name.toLowerCase();
  if (CITY_NAMES.has(lower)) return `${name} is reserved: the city acts under that name`;
  for (const a of agents) {
    if (lower === a.name.toLowerCase()) return `${name} is the name of the city agent ${a.name}`;
    const prefix = `${a.name.toLowerCase()}-`;
    if (lower.startsWith(prefix) && /^\d+$/.test(lower.slice(prefix.length))) {
      return `${name} is a session name of the agent ${a.name} (as a pool)`;
    }
  }
  return undefined;
}

export function keyRoutes(router: Router, k: RouteKit): void {
  const { server, keys, events } = k;
  /** External agent names whose registration is being written. */
  const registering = new Set<string>();
  router
    // ---- keys and the agent registry ----
    .on(
      'POST',
      '/v0/keys',
      {
        summary: 'Create an admin, operator or metrics key (shown once)',
        allow: ADMIN,
        body: S.keyCreateBody,
      },
      async (ctx) => {
        only(ctx, ['admin'], 'create API keys');
        const { kind, name, max_sessions: max } = ctx.input;
        const created = await keys.create({
          kind,
          name,
          ...(max !== undefined ? { maxSessions: max } : {}),
        });
        await events.record({
          type: 'auth.key_created',
          actor: ctx.actor,
          subject: created.principal.key_id,
          payload: { kind, name: created.principal.name },
          message: `${kind} key ${created.principal.key_id} created for ${created.principal.name}`,
        });
        return created;
      },
    )
    .on(
      'GET',
      '/v0/keys',
      { summary: 'Keys by creation order (cursor = after)', allow: ADMIN, query: S.keysQuery },
      (ctx) => {
        only(ctx, ['admin'], 'list API keys');
        const after = num(ctx.query.get('after'));
        const limit = num(ctx.query.get('limit'));
        const kind = ctx.query.get('kind') as PrincipalKind | null;
        return keys.list({
          ...(kind ? { kind } : {}),
          ...(after !== undefined ? { after } : {}),
          ...(limit !== undefined ? { limit } : {}),
          includeRevoked: ctx.query.get('revoked') === 'true',
        });
      },
    )
    .on('DELETE', '/v0/keys/:id', { summary: 'Revoke a key', allow: ADMIN }, async (ctx) => {
      only(ctx, ['admin'], 'revoke API keys');
      const p = await keys.revoke(ctx.params.id!);
      await events.record({
        type: 'auth.key_revoked',
        actor: ctx.actor,
        subject: p.key_id,
        payload: { kind: p.kind, name: p.name },
        message: `${p.kind} key ${p.key_id} (${p.name}) revoked`,
      });
      return p;
    })
    .on(
      'POST',
      '/v0/agents',
      {
        summary: 'Register an external agent (token shown once)',
        allow: STAFF,
        body: S.agentRegisterBody,
      },
      async (ctx) => {
        only(ctx, ['admin', 'operator'], 'register agents');
        const { name, webhook_url: webhook } = ctx.input;
        validateSessionName(name, 'body.name');
        const reserved = reservedName(name, server.spec.agents);
        if (reserved) throw new ValidationError(reserved, { where: 'body.name' });
        // A name being registered right now counts as taken: the check and
        // the write are not one step.
        if (keys.has('agent', name) || registering.has(name)) {
          throw new ValidationError(`${name} is taken by a registered agent`, {
            where: 'body.name',
          });
        }
        if (webhook !== undefined) {
          const problem = webhookUrlProblem(webhook);
          if (problem) throw new ValidationError(problem, { where: 'body.webhook_url' });
        }
        registering.add(name);
        let created;
        try {
          created = await keys.create({
            kind: 'agent',
            name,
            owner: ctx.principal.kind === 'operator' ? ctx.principal.name : '',
            ...(webhook ? { webhookUrl: webhook } : {}),
          });
        } finally {
          registering.delete(name);
        }
        await events.record({
          type: 'agent.registered',
          actor: ctx.actor,
          subject: name,
          payload: { key_id: created.principal.key_id, owner: created.principal.owner },
          message: `external agent ${name} registered`,
        });
        return created;
      },
    )
    .on(
      'GET',
      '/v0/agents',
      {
        summary: 'Registered agents by registration order (cursor = after)',
        allow: STAFF,
        query: S.keysQuery,
      },
      (ctx) => {
        only(ctx, ['admin', 'operator'], 'list registered agents');
        const after = num(ctx.query.get('after'));
        const limit = num(ctx.query.get('limit'));
        return keys.list({
          kind: 'agent',
          ...(ctx.principal.kind === 'operator' ? { owner: ctx.principal.name } : {}),
          ...(after !== undefined ? { after } : {}),
          ...(limit !== undefined ? { limit } : {}),
        });
      },
    );
}
