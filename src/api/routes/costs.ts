/**
 * Routes: costs. Usage totals grouped as asked, with the budgets; and
 * recording usage (an agent's Stop hook: `gc cost record`). An agent
 * records only its own session's usage; staff record anyone's.
 */
import { randomUUID } from 'node:crypto';
import { ForbiddenError } from '../../core/index.js';
import { agentOfSession } from '../../controller/index.js';
import { costOf, usageTime as when, type UsageRecord } from '../../costs/index.js';
import { sinceMs } from '../../events/index.js';
import type { Router } from '../http.js';
import * as S from '../schemas.js';
import type { RouteKit } from './common.js';

export function costRoutes(router: Router, k: RouteKit): void {
  const { server } = k;
  router
    .on(
      'GET',
      '/v0/costs',
      {
        leader: true,
        summary:
          'Usage totals (by= agent, rig, bead, model, session, provider; since=, until=) and budgets',
        query: S.costsQuery,
      },
      async (ctx) => {
        const now = Date.now();
        const q = ctx.query;
        const by = (q.get('by') ?? undefined) as S.CostsBy | undefined;
        const since = when(q.get('since'), 'query.since', now);
        const until = when(q.get('until'), 'query.until', now);
        const totals = await server.usage.totals({
          ...(by ? { by } : {}),
          ...(since !== undefined ? { since } : {}),
          ...(until !== undefined ? { until } : {}),
          ...(q.get('agent') ? { agent: q.get('agent')! } : {}),
          ...(q.get('rig') ? { rig: q.get('rig')! } : {}),
        });
        return {
          by: by ?? null,
          since: since !== undefined ? new Date(since).toISOString() : null,
          until: until !== undefined ? new Date(until).toISOString() : null,
          totals,
          budgets: server.budgets.view(),
        };
      },
    )
    .on(
      'POST',
      '/v0/costs',
      {
        leader: true,
        summary: 'Record usage (an agent: its own session’s only)',
        body: S.costRecordBody,
        who: 'agent sessions (their own), operators, admin',
      },
      async (ctx) => {
        const b = ctx.input;
        const agentKey = ctx.principal.kind === 'agent';
        const session = agentKey ? k.ownSession(ctx) : (b.session ?? '');
        if (agentKey && b.session !== undefined && b.session !== session) {
          throw new ForbiddenError(
            `agent ${session} may record only its own usage, not ${b.session}'s`,
          );
        }
        const spec = server.controller.currentSpec;
        const agent = session ? agentOfSession(spec, session) : undefined;
        if (agentKey && (b.agent !== undefined || b.rig !== undefined)) {
          if (
            (b.agent && b.agent !== agent?.name) ||
            (b.rig !== undefined && b.rig !== (agent?.rig ?? ''))
          ) {
            throw new ForbiddenError(
              `agent ${session} may not record usage as another agent or rig`,
            );
          }
        }
        const at = b.at === undefined ? Date.now() : (sinceMs(b.at) ?? Date.now());
        const t = {
          input_tokens: b.input_tokens,
          cached_input_tokens: b.cached_input_tokens,
          cache_write_tokens: b.cache_write_tokens,
          output_tokens: b.output_tokens,
        };
        const record: UsageRecord = {
          dedup: b.id ? `record:${session}:${b.id}` : `record:${randomUUID()}`,
          session,
          agent: b.agent ?? agent?.name ?? '',
          rig: b.rig ?? agent?.rig ?? '',
          bead: b.bead ?? '',
          provider: b.provider ?? '',
          model: b.model,
          ...t,
          cost_usd: b.cost_usd ?? costOf(b.model, t, server.prices()) ?? null,
          source: 'record',
          at,
        };
        const added = (await server.recordUsage([record])) > 0;
        return { added, record };
      },
    );
}
