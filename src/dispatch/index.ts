/** Dispatch module: sling (route work) and hook (an agent's current work). */
export { hook, hookText, sling, type HookResult, type SlingResult } from './dispatch.js';
