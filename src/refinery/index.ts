export { mergeOrder, score, PRIORITY_MINUTES, RETRY_PENALTY_MINUTES } from './score.js';
export {
  MergeQueue,
  MR_STATES,
  type MergeRequest,
  type MrState,
  type RigStats,
  type SubmitInput,
  type SubmitResult,
} from './queue.js';
export { GATE_NAMES, runGate, type GateName, type GateRun, type GateSpec } from './gates.js';
export { RigEngine, type MergeHooks, type MergeStyle, type RigEngineOptions } from './engine.js';
export { cityMergeHooks, type CityMergeHooksOptions } from './hooks.js';
export { SessionWorktrees } from './worktrees.js';
export {
  Refinery,
  rigGates,
  type MqListQuery,
  type RefineryOptions,
  type SubmitRequest,
} from './refinery.js';
