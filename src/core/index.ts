/** Core: shared errors, clock, ids, durations, where the city and the admin key are. Depends on nothing else in src. */
export * from './errors.js';
export * from './clock.js';
export * from './duration.js';
export * from './ids.js';
export * from './suggest.js';
export * from './paths.js';
export * from './registry.js';
export { armFaults, fault, killPoint } from './faults.js';
export { startProcess, killGroup, processAlive, type StartedProcess, type Exit } from './spawn.js';
export { runFile, type RunFileOptions, type RunFileResult } from './run-file.js';
export { checkScript, runScript, SCRIPT_TIMEOUT_MS, type ScriptOptions } from './script.js';
export {
  inRequest,
  nextRequestWrite,
  outsideRequest,
  unusedRequestWrite,
  type RequestScope,
} from './request.js';
export { printable } from './text.js';
export { mapLimit, SerialBatcher } from './limit.js';
export { GC_VERSION } from './version.js';
