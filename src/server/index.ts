/**
 * Server module: a city server composed of its parts (compose.ts), the API
 * role (listen.ts: sockets, TCP, forwarding to the leader) and the leader
 * role (leadership.ts: the lease and the servers table; leader-work.ts:
 * the controller, merge queue, runs and patrols the leader runs).
 */
export {
  CityServer,
  citySocketPath,
  serverSocketPath,
  type CityServerOptions,
  type ServerInfo,
  type ServerState,
} from './city-server.js';
export { HOST_BOUND_PROVIDERS } from './leadership.js';
export { serverHost } from './host.js';
export { writeImageContext, gcPackageRoot, type ImageContext } from './image.js';
export { NotLeaderError } from './fenced-provider.js';
