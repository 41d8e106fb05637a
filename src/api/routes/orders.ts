/**
 * Routes: orders. The city's orders with their gates' decisions, their
 * runs, and running one now (on the leader). Staff run them; anyone reads.
 */
import type { Router } from '../http.js';
import * as S from '../schemas.js';
import { STAFF, num, only, type RouteKit } from './common.js';

export function orderRoutes(router: Router, k: RouteKit): void {
  const { server } = k;
  router
    .on(
      'GET',
      '/v0/orders',
      { summary: 'The city’s orders, and the files that could not be read' },
      () => Promise.resolve(server.orders.list()),
    )
    .on(
      'GET',
      '/v0/orders/check',
      { summary: 'Every order’s gate decision now (conditions are run; nothing fires)' },
      () => server.orders.check(),
    )
    .on(
      'GET',
      '/v0/orders/history',
      { summary: 'Order runs, newest first (order= one order)', query: S.orderHistoryQuery },
      (ctx) => {
        const order = ctx.query.get('order') ?? undefined;
        return server.orders.history(order || undefined, num(ctx.query.get('limit')) ?? 20);
      },
    )
    .on(
      'POST',
      '/v0/orders/:name/run',
      {
        leader: true,
        summary: 'Run an order now, whatever its gate (refused while a run is open)',
        allow: STAFF,
      },
      (ctx) => {
        only(ctx, ['admin', 'operator'], 'run an order');
        return server.orders.run(ctx.params.name!, ctx.actor);
      },
    )
    .on(
      'GET',
      '/v0/orders/:name',
      { summary: 'An order, its gate decision and its recent runs', query: S.orderShowQuery },
      async (ctx) => {
        const name = ctx.params.name!;
        const state = await server.orders.status(name, ctx.query.get('check') === 'true');
        return { ...state, runs: await server.orders.history(name, 10) };
      },
    );
}
