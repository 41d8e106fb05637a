/** Controller module: the reconcile loop, its pure decision functions and the city spec. */
export {
  Controller,
  META,
  type ControllerOptions,
  type ControllerStatus,
  type SessionStatus,
  type TickReport,
} from './controller.js';
export { aliasOf, citySpec, hostSessionCap, type AgentSpec, type CitySpec } from './spec.js';
export { DEFAULT_PROMPT, DEFAULT_RIG_PROMPT, renderTemplate, type PromptVars } from './prompt.js';
export {
  desiredState,
  agentOfSession,
  poolSessionName,
  type DesiredSession,
  type DesiredState,
  type TickFacts,
} from './desired.js';
export {
  reconcilePlan,
  recentDeaths,
  type Action,
  type Plan,
  type PlanOptions,
  type SessionTracker,
} from './plan.js';
export { runScaleChecks } from './scale-check.js';
export { STATUS_SESSIONS, boundedStatus, type BoundedStatus } from './status.js';
export type { ShutdownProgress } from './shutdown.js';
export { unknownRecipientWarning, type KnownNames } from './recipients.js';
export { preflight, type Preflight } from './preflight.js';
export {
  FileSessionFacts,
  SqlSessionFacts,
  type SessionFact,
  type SessionFacts,
} from './session-facts.js';
