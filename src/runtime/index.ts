/** Runtime module: the session provider seam, its providers and agent presets. */
export type {
  Provider,
  ProviderCapabilities,
  ProviderHealth,
  SessionSnapshot,
  StartOptions,
  StartRequest,
  StartedEach,
} from './provider.js';
export {
  parseStartConfig,
  startConfigSchema,
  type StartConfig,
  type StartupDialog,
} from './start-config.js';
export * from './errors.js';
export * from './validate.js';
export { FakeProvider, type FakeCall } from './fake.js';
export { CountingProvider, type ProviderMethod } from './counting.js';
export { SubprocessProvider, type SubprocessProviderOptions } from './subprocess.js';
export { TmuxProvider, tmuxSocketFor, type TmuxProviderOptions } from './tmux.js';
export { ExecProvider, type ExecProviderOptions } from './exec.js';
export { openProvider, type OpenProviderOptions } from './open.js';
export { K8sProvider, type K8sProviderOptions } from './k8s/provider.js';
export { ClientPodApi, loadKubeConfig } from './k8s/client.js';
export type {
  PodApi,
  ExecResult,
  PodList,
  WatchEventType,
  WatchHandle,
  WatchStatus,
} from './k8s/api.js';
export { buildPod, sanitizeName, viewPod, ENTRYPOINT } from './k8s/pod-spec.js';
export {
  PRESET_NAMES,
  mergePreset,
  presetStartConfig,
  shellQuote,
  type AgentPreset,
  type PresetOverride,
  type PromptMode,
} from './presets.js';
export { checkCommand, findExecutable, showsReadyPrompt, stripAnsi } from './startup.js';
export { requireSession } from './lookup.js';
export { interruptSessions, nudgeSessions, stopSessions } from './fanout.js';
