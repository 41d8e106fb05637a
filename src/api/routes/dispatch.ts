/** Routes: dispatch. Sling a bead, pour a formula as a molecule (sling --formula, cook), hook. */
import { formulaRequest, hook, slingFormula, slingWork } from '../../dispatch/index.js';
import { nudgeSessions, type Provider } from '../../runtime/index.js';
import type { Router } from '../http.js';
import * as S from '../schemas.js';
import { num, type RouteKit } from './common.js';

/** Best effort: the work is routed either way. */
async function nudge(provider: Provider, target: string, what: string): Promise<void> {
  await nudgeSessions(
    provider,
    await provider.listRunning(target),
    `New work routed to ${target}: ${what}. Run gc hook.`,
    () => undefined,
  );
}

export function dispatchRoutes(router: Router, k: RouteKit): void {
  const { server, ops, provider } = k;
  const pending = () => server.refinery.queue.queuedBeads();
  const agents = () => server.spec.agents.map((a) => a.name);
  router
    .on(
      'POST',
      '/v0/sling',
      {
        summary:
          "Route a bead to an agent or pool, in its own convoy unless convoy is false; the target's default_sling_formula is poured on it unless formula is false",
        body: S.slingBody,
      },
      async (ctx) => {
        const { target, bead } = ctx.input;
        const result = await slingWork(
          ops,
          ctx.actor,
          target,
          bead,
          agents(),
          () => server.formulaFiles(),
          {
            ...(ctx.input.convoy !== undefined ? { convoy: ctx.input.convoy } : {}),
            ...(ctx.input.owned !== undefined ? { owned: ctx.input.owned } : {}),
            ...(ctx.input.formula !== undefined ? { formula: ctx.input.formula } : {}),
            defaultFormula: server.defaultSlingFormula(target),
          },
        );
        if (result.convoy) server.convoysChanged();
        if (ctx.input.nudge === true) await nudge(provider, target, bead);
        return result;
      },
    )
    .on(
      'POST',
      '/v0/molecules',
      {
        summary:
          'Pour a formula as a molecule in one transaction: its steps routed to target (absent: cook, nothing routed)',
        body: S.moleculeBody,
      },
      async (ctx) => {
        const { target, nudge: wake, ...rest } = ctx.input;
        server.admitCreate(ctx.principal);
        const result = await slingFormula(
          ops,
          ctx.actor,
          target ?? null,
          server.formulaFiles(),
          agents(),
          formulaRequest(rest),
        );
        server.convoysChanged();
        if (target && wake === true) await nudge(provider, target, result.root.id);
        return result;
      },
    )
    .on('GET', '/v0/hook', { summary: "The caller's current work", query: S.hookQuery }, (ctx) =>
      hook(
        ops,
        ctx.actor,
        ctx.query.get('agent') ?? undefined,
        num(ctx.query.get('limit')),
        server.holdOverlapping === 'off' ? undefined : pending,
      ),
    );
}
