/** API module: the city server and its HTTP API on the city socket. */
export {
  CityServer,
  citySocketPath,
  createApiRouter,
  redact,
  type CityServerOptions,
  type ServerState,
} from './city-server.js';
export { Router, errorBody, MAX_BODY_BYTES } from './http.js';
export { IdempotencyStore } from './idempotency.js';
export { openApiDocument } from './openapi.js';
export { RunService, type Run, type RunState } from './runs.js';
