/** The API's router: every /v0 route over a host (see host.ts). */
import { Router, type RouterOptions } from './http.js';
import type { ApiHost } from './host.js';
import { registerRoutes } from './routes/index.js';

/**
 * A router with every API route for `host`. The city server builds its own
 * with key authentication; benchmarks build a second one to measure the
 * cost of authentication against the same routes.
 */
export function createApiRouter(host: ApiHost, options: RouterOptions): Router {
  const router = new Router(options);
  registerRoutes(router, host);
  return router;
}
