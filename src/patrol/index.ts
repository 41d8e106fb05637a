/** Patrol module: the leader's tiered health patrol and its escalation ladder. */
export {
  dueRigs,
  inspect,
  tierRigs,
  type Finding,
  type FindingKind,
  type Observation,
  type PatrolClaim,
  type PatrolDisk,
  type PatrolQueue,
  type PatrolSession,
  type PatrolSettings,
  type RigInfo,
  type Tier,
} from './inspect.js';
export { stepLadder, stepsFor, type Action, type Rung, type Step } from './ladder.js';
export { observe, type CityView } from './observe.js';
export {
  ALERT_PREFIX,
  Patrol,
  clearAfter,
  type OpenFinding,
  type PassReport,
  type PatrolAlert,
  type PatrolConfig,
  type PatrolHost,
  type PatrolReport,
} from './patrol.js';
