/**
 * API routes (`/v0`). Every route declares its body and query schemas
 * (validated by the router, published in `/v0/openapi.json`) and enforces
 * who may call it: admin everything; operators their own runs, agents and
 * keys; agents only as themselves (their mail, their claims, beads they
 * hold), never city control.
 */
import type { ApiHost } from '../host.js';
import type { Router } from '../http.js';
import { beadRoutes } from './beads.js';
import { routeKit } from './common.js';
import { controlRoutes } from './control.js';
import { convoyRoutes } from './convoys.js';
import { costRoutes } from './costs.js';
import { dispatchRoutes } from './dispatch.js';
import { keyRoutes } from './keys.js';
import { mailAndQueueRoutes } from './mail.js';
import { orderRoutes } from './orders.js';
import { sessionRoutes } from './sessions.js';

export function registerRoutes(router: Router, server: ApiHost): void {
  const kit = routeKit(server);
  controlRoutes(router, kit);
  beadRoutes(router, kit);
  dispatchRoutes(router, kit);
  convoyRoutes(router, kit);
  orderRoutes(router, kit);
  costRoutes(router, kit);
  mailAndQueueRoutes(router, kit);
  sessionRoutes(router, kit);
  keyRoutes(router, kit);
}
