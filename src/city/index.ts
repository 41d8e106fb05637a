/** City module: the city lock, opening a city's state, and the bead operations shared by server and CLI. */
export { CityLock, type LockInfo, type LockRole } from './lock.js';
export { openCityState, type CityState, type OpenCityStateOptions } from './state.js';
export { CityOps, type ClaimRequest, type UnclaimRequest } from './ops.js';
export { adminKeyPath, readAdminKey } from '../core/index.js';
export {
  KeyRing,
  type CreatedKey,
  type KeyInput,
  type Principal,
  type PrincipalKind,
} from './keyring.js';
export { SqlKeyStore, SqliteKeyStore, type KeyStore } from './key-store.js';
export { replayBeads, ReplayError, type ReplayedBead } from './replay.js';
export { databaseTarget, openCityKeyRing, type DatabaseTarget } from './database.js';
export { copyCityToDatabase, type CopyResult } from './copy.js';
export { LeaderElector, type ElectorOptions } from './leader.js';
