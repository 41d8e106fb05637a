/** Dispatch module: sling (route work), hook (an agent's current work), convoys and waves. */
export { hook, hookText, sling, type HookResult, type SlingResult } from './dispatch.js';
export {
  CONVOY,
  CONVOY_META,
  DEFAULT_WAVE_TIMEOUT_MS,
  MERGE_STRATEGIES,
  addToConvoy,
  convoyOptions,
  createConvoy,
  listConvoys,
  patrolConvoys,
  status as convoyStatus,
  type ConvoyCreate,
  type ConvoyNotifier,
  type ConvoyOptions,
  type ConvoyStatus,
  type ConvoySummary,
  type ConvoyWave,
  type PatrolResult,
  type PendingMerge,
} from './convoy.js';
export { nextRelease, planWaves, type Release, type WaveItem, type WaveProgress } from './waves.js';
export { ConvoyPatrol } from './convoy-patrol.js';
export {
  closeConvoy,
  convoyNotifier,
  deleteConvoy,
  setConvoyTarget,
  strandedConvoys,
  type ConvoyCloseResult,
  type ConvoyDeleteResult,
  type StrandedConvoy,
} from './convoy-life.js';
export {
  MOL,
  MOLECULE,
  MOLECULE_ID,
  WISP,
  moleculeBeads,
  moleculeInputs,
  moleculeProgress,
  patrolMolecules,
  pourMolecule,
  type MoleculePatrolResult,
  type MoleculeProgress,
  type PourOptions,
  type Poured,
} from './molecule.js';
export {
  compileFor,
  findFormula,
  formulaRequest,
  slingBead,
  slingFormula,
  slingWork,
  type BeadSlingOptions,
  type BeadSlingResult,
  type ConvoyChoice,
  type FormulaRequest,
  type FormulaSlingInput,
  type FormulaSlingResult,
} from './sling-work.js';
export {
  claimNextAware,
  holdReasons,
  inFlight,
  type HoldMode,
  type PendingBeads,
} from './aware.js';
export {
  PATHS,
  TOUCHED,
  beadPaths,
  claimOrder,
  globsOverlap,
  holdText,
  holdsOf,
  type Hold,
  type PathBead,
} from './paths.js';
