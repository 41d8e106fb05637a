/**
 * Agent presets: how to run the real agent CLIs in a session. A preset says
 * which program to start, how the first prompt is passed, what output means
 * "ready", which process names mean the agent is alive, and which start-up
 * dialogs to dismiss. city.toml `[providers.<name>]` entries override or add
 * presets field by field (see `mergePreset`).
 */
import { UnsupportedError, suggest } from '../core/index.js';
import type { StartConfig, StartupDialog } from './start-config.js';

export type PromptMode = 'arg' | 'flag' | 'none';

export interface AgentPreset {
  name: string;
  command: string;
  args: string[];
  /** `arg`: prompt is the last argument; `flag`: after `promptFlag`; `none`: nudged after start. */
  promptMode: PromptMode;
  promptFlag?: string;
  readyPromptPrefix?: string;
  readyDelayMs?: number;
  processNames: string[];
  startupDialogs: StartupDialog[];
  env: Record<string, string>;
}

// Dialog texts are the CLIs' own wording at the time of writing; a dialog
// that is not matched only costs the start deadline, and is visible in peek.
const BUILTIN: Record<string, AgentPreset> = {
  claude: {
    name: 'claude',
    command: 'claude',
    args: ['--dangerously-skip-permissions'],
    promptMode: 'arg',
    readyPromptPrefix: '\u276f',
    processNames: ['claude', 'node'],
    startupDialogs: [
      { match: 'Do you trust the files in this folder?', keys: ['Enter'] },
      // "1. No, exit" is selected by default; move to "2. Yes, I accept".
      { match: 'Bypass Permissions mode', keys: ['Down', 'Enter'] },
    ],
    env: {},
  },
  codex: {
    name: 'codex',
    command: 'codex',
    args: ['--dangerously-bypass-approvals-and-sandbox'],
    promptMode: 'arg',
    readyDelayMs: 3000,
    processNames: ['codex', 'node'],
    startupDialogs: [
      { match: 'allow Codex to work in this folder', keys: ['Enter'] },
      { match: 'Do you trust the contents of this directory', keys: ['Enter'] },
    ],
    env: {},
  },
  gemini: {
    name: 'gemini',
    command: 'gemini',
    args: ['--approval-mode', 'yolo'],
    promptMode: 'flag',
    promptFlag: '--prompt-interactive',
    readyDelayMs: 5000,
    processNames: ['gemini', 'node'],
    startupDialogs: [{ match: 'Do you trust this folder?', keys: ['Enter'] }],
    env: {},
  },
  opencode: {
    name: 'opencode',
    command: 'opencode',
    args: [],
    promptMode: 'flag',
    promptFlag: '--prompt',
    readyDelayMs: 3000,
    processNames: ['opencode'],
    startupDialogs: [],
    env: {},
  },
  generic: {
    name: 'generic',
    command: 'sh',
    args: [],
    promptMode: 'none',
    processNames: [],
    startupDialogs: [],
    env: {},
  },
};

export const PRESET_NAMES = Object.keys(BUILTIN);

/** Fields a city.toml `[providers.<name>]` table may set. */
export interface PresetOverride {
  command?: string | undefined;
  args?: string[] | undefined;
  prompt_mode?: PromptMode | undefined;
  prompt_flag?: string | undefined;
  ready_prompt_prefix?: string | undefined;
  ready_delay_ms?: number | undefined;
  process_names?: string[] | undefined;
  env?: Record<string, string> | undefined;
}

/**
 * The preset `name`: a built-in one with `override` applied, or one defined
 * only by `override` (which must then give a command).
 */
export function mergePreset(name: string, override?: PresetOverride): AgentPreset {
  const base = BUILTIN[name];
  if (!base && !override?.command) {
    const hint = suggest(name, PRESET_NAMES);
    throw new UnsupportedError(`unknown agent provider ${JSON.stringify(name)}`, {
      details: { provider: name, known: PRESET_NAMES },
      fix: hint
        ? `did you mean ${JSON.stringify(hint)}? or define [providers.${name}] with a command`
        : `use one of ${PRESET_NAMES.join(', ')}, or define [providers.${name}] with a command`,
    });
  }
  const b = base ?? { ...BUILTIN.generic!, name };
  const o = override ?? {};
  const preset: AgentPreset = {
    name,
    command: o.command ?? b.command,
    args: o.args ?? b.args,
    promptMode: o.prompt_mode ?? b.promptMode,
    processNames: o.process_names ?? b.processNames,
    startupDialogs: b.startupDialogs,
    env: { ...b.env, ...o.env },
  };
  const flag = o.prompt_flag ?? b.promptFlag;
  if (flag !== undefined) preset.promptFlag = flag;
  const prefix = o.ready_prompt_prefix ?? b.readyPromptPrefix;
  if (prefix !== undefined) preset.readyPromptPrefix = prefix;
  const delay = o.ready_delay_ms ?? b.readyDelayMs;
  if (delay !== undefined) preset.readyDelayMs = delay;
  return preset;
}

/** Quote one word for `sh -c`: single quotes, which the shell never expands. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The start config for running `preset` with an optional first `prompt`.
 * The prompt (often text from a bead, so untrusted) is quoted as one word;
 * with prompt mode `none` it is sent as the first nudge instead.
 */
export function presetStartConfig(
  preset: AgentPreset,
  options: { prompt?: string; base?: StartConfig } = {},
): StartConfig {
  const words = [preset.command, ...preset.args];
  const prompt = options.prompt;
  let nudge = options.base?.nudge;
  if (prompt !== undefined && prompt !== '') {
    if (preset.promptMode === 'arg') words.push(prompt);
    else if (preset.promptMode === 'flag' && preset.promptFlag)
      words.push(preset.promptFlag, prompt);
    else nudge = prompt;
  }
  const config: StartConfig = {
    ...options.base,
    command: words.map(shellQuote).join(' '),
    env: { ...preset.env, ...options.base?.env },
    process_names: options.base?.process_names ?? preset.processNames,
  };
  if (nudge !== undefined) config.nudge = nudge;
  const prefix = options.base?.ready_prompt_prefix ?? preset.readyPromptPrefix;
  if (prefix !== undefined) config.ready_prompt_prefix = prefix;
  const delay = options.base?.ready_delay_ms ?? preset.readyDelayMs;
  if (delay !== undefined) config.ready_delay_ms = delay;
  if (preset.startupDialogs.length && !options.base?.startup_dialogs) {
    config.startup_dialogs = preset.startupDialogs;
  }
  return config;
}
