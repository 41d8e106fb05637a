/** API module: the HTTP API (/v0) over a host; the server composing a city is in server/. */
export { createApiRouter } from './router.js';
export { Router, errorBody, MAX_BODY_BYTES, type RouterOptions } from './http.js';
export type { ApiHost, DashboardLinks } from './host.js';
export { IdempotencyStore, type IdempotencyRecords } from './idempotency.js';
export { openCityRecords, type CityRecords } from './city-records.js';
export { createLimitedServer, defaultMaxConnections } from './listener.js';
export { RateLimiter } from './rate-limit.js';
export { openApiDocument } from './openapi.js';
export { RunService, type Run, type RunState } from './runs.js';
export { CityMetrics } from './metrics.js';
export { SseWriter, sseHeaders } from './sse.js';
