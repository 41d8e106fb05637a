/** Config module: city.toml schema, loading with positions, env overrides. */
export * from './schema.js';
export {
  PATROL_STEPS,
  alertSchema,
  budgetSchema,
  costsSchema,
  patrolSchema,
} from './schema-watch.js';
export * from './load.js';
export { formatPath, keyPositions } from './toml-positions.js';
export { initCity, type InitOptions } from './init.js';
export { renderConfigReference } from './reference.js';
export { maskUrlPassword, redactConfig } from './redact.js';
export { cacheDir, LOCK_FILE, parseSource, readLock, renderLock } from './pack-source.js';
export { agentName } from './compose.js';
export type { ComposedPack } from './compose-city.js';
export type { AgentOrigin } from './pack.js';
