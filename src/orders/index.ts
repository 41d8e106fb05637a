/** Orders module: Gas City orders (orders/<name>.toml), their gates and their runs. */
export * from './types.js';
export {
  cronMatches,
  knownZone,
  nextFire,
  parseCron,
  wallClock,
  type Cron,
  type Wall,
} from './cron.js';
export { OrderError, orderName, readOrder, RESERVED_ENV } from './parse.js';
export { agentNames, discoverOrders, type Discovered } from './discover.js';
export { blocked, decide, type GateDecision, type GateFacts } from './gates.js';
export {
  KEEP_RUNS,
  ORDER_ACTOR,
  ORDER_WISP_TTL_MS,
  OrderScheduler,
  type OrderHost,
  type OrderRun,
  type OrderState,
} from './scheduler.js';
