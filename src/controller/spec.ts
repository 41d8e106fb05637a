/**
 * CitySpec: city.toml resolved into what the controller decides with. Built
 * once per (re)load, with all file reads (prompt templates) done here, so the
 * decision functions downstream never touch the disk.
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { cpus, freemem } from 'node:os';
import path from 'node:path';
import { ValidationError } from '../core/index.js';
import { ms, type AgentConfig, type CityConfig, type LoadedConfig } from '../config/index.js';
import { mergePreset, presetStartConfig, type StartConfig } from '../runtime/index.js';
import {
  DEFAULT_PROMPT,
  DEFAULT_RIG_PROMPT,
  parseFragments,
  renderTemplate,
  type Fragments,
  type PromptVars,
} from './prompt.js';

/** How one start of a session wakes: its session key, and whether it ran before (resume). */
export interface Wake {
  key: string;
  resume: boolean;
}

export interface AgentSpec {
  name: string;
  rig: string | undefined;
  /** A pool has numbered sessions `<name>-<n>` sized by demand. */
  pool: boolean;
  min: number;
  max: number;
  scaleCheck: string | undefined;
  dependsOn: string[];
  suspended: boolean;
  /** Sessions stop after this long without output (and, for singletons, wake on work). */
  idleTimeoutMs: number | undefined;
  /** A singleton that starts only when work is routed to it (mode = "on_demand"). */
  onDemand?: boolean;
  /** The name users write (`rig/name`, `binding.name`); `name` when not composed from a pack. */
  qualified?: string;
  drainTimeoutMs: number;
  /** Start config without the per-session env, rendered for the agent itself. */
  start: StartConfig;
  /**
   * The start config of one session: its prompt rendered with its own name
   * and work dir (a rig agent's session works in its own worktree).
   */
  startFor(session: string, workDir: string, wake?: Wake): StartConfig;
  /** resume (wake_mode resume with a resume_command): a session keeps its key and restarts with resume_command. */
  wakeMode: 'resume' | 'fresh';
  /** Whether `gc session attach` may attach a terminal to its sessions. */
  attach: boolean;
  /** Alias names from the agent's namepool: session n is also known as the n-th. */
  namepool: readonly string[];
  /** The prompt one session starts with (what `gc prime` prints); undefined when none. */
  promptFor(session: string, workDir: string): string | undefined;
  /** The default prompt, rendered for one session (gc prime of an agent with none). */
  defaultPromptFor(session: string, workDir: string): string;
  /** Hash of what needs a restart when it changes: command, env, setup. */
  fingerprint: string;
  /** Environment variables a run of this agent may set (`run_env`). */
  runEnv: readonly string[];
}

export interface CitySpec {
  name: string;
  root: string;
  suspended: boolean;
  agents: AgentSpec[];
  rigCaps: Map<string, number>;
  suspendedRigs: Set<string>;
  workspaceCap: number;
  daemon: {
    patrolIntervalMs: number;
    maxRestarts: number;
    restartWindowMs: number;
    shutdownTimeoutMs: number;
    probeConcurrency: number;
    maxWakesPerTick: number;
    driftDrainTimeoutMs: number;
  };
  startupTimeoutMs: number;
}

/**
 * The default city-wide session cap: what the host can carry.
 * `min(cores x 10, free RAM / session_memory_mb, 2000)`, at least 1.
 */
export function hostSessionCap(
  sessionMemoryMb: number,
  host: { cores: number; freeBytes: number } = { cores: cpus().length, freeBytes: freemem() },
): number {
  const byRam = Math.floor(host.freeBytes / (sessionMemoryMb * 1024 * 1024));
  return Math.max(1, Math.min(host.cores * 10, byRam, 2000));
}

function hash(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
}

/**
 * How an agent's sessions start: the prompt template is read once (here),
 * then rendered for each session. An agent with a provider and no
 * prompt_template gets the default prompt for where it works.
 */
/**
 * Prompt fragments of every composed pack (`template-fragments/*.md`,
 * `*.tmpl`): a file's {{define}} blocks, or the whole file under its name;
 * the city's own pack wins over the packs it includes.
 */
function loadFragments(packs: readonly { dir: string }[]): Fragments {
  const out: Fragments = new Map();
  for (const p of [...packs].reverse()) {
    const dir = path.join(p.dir, 'template-fragments');
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).sort()) {
      if (!/\.(md|tmpl)$/.test(f)) continue;
      const name = f.replace(/(\.template)?\.md$|(\.md)?\.tmpl$/, '');
      parseFragments(readFileSync(path.join(dir, f), 'utf8'), name, out);
    }
  }
  return out;
}

/** The names of an agent's namepool file: one per line, blank lines and # comments skipped. */
function readNamepool(a: AgentConfig, root: string): string[] {
  if (!a.namepool) return [];
  const file = path.resolve(root, a.namepool);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ValidationError(`cannot read ${file}: ${(e as Error).message}`, {
      where: `agent ${a.name}: namepool`,
    });
  }
  const names = text
    .split('\n')
    .map((l) => l.replace(/#.*/, '').trim())
    .filter((l) => l !== '');
  const bad = names.find((n) => !/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(n));
  if (bad !== undefined) {
    throw new ValidationError(
      `${JSON.stringify(bad)} in ${file} is not a name (letters, digits, _ . - only)`,
      { where: `agent ${a.name}: namepool` },
    );
  }
  const twice = names.find((n, i) => names.indexOf(n) !== i);
  if (twice !== undefined) {
    throw new ValidationError(`${JSON.stringify(twice)} is in ${file} twice`, {
      where: `agent ${a.name}: namepool`,
    });
  }
  return names;
}

/** The alias of `session` among an agent's sessions: the n-th name for session n (`name-n`, or the singleton). */
export function aliasOf(
  agent: Pick<AgentSpec, 'name' | 'pool' | 'namepool'>,
  session: string,
): string | undefined {
  if (!agent.namepool.length) return undefined;
  if (!agent.pool) return session === agent.name ? agent.namepool[0] : undefined;
  const n = session.slice(agent.name.length + 1);
  if (!session.startsWith(`${agent.name}-`) || !/^[1-9]\d*$/.test(n)) return undefined;
  return agent.namepool[Number(n) - 1];
}

/** idle_timeout, else sleep_after_idle (Gas City's spelling; "off" = none). */
function idleTimeout(a: AgentConfig): number | undefined {
  const d = a.idle_timeout ?? (a.sleep_after_idle === 'off' ? undefined : a.sleep_after_idle);
  return d ? ms(d) : undefined;
}

function agentStart(
  a: AgentConfig,
  config: CityConfig,
  root: string,
  rig: { path: string; target: string } | undefined,
  qualified: string | undefined,
  fragments: Fragments,
  alias: (session: string) => string,
): Pick<AgentSpec, 'start' | 'startFor' | 'promptFor' | 'defaultPromptFor'> {
  const defaultDir = a.work_dir ? path.resolve(root, a.work_dir) : (rig?.path ?? root);
  let template: string | undefined;
  if (a.prompt_template) {
    const file = path.resolve(root, a.prompt_template);
    try {
      template = readFileSync(file, 'utf8');
    } catch (e) {
      throw new ValidationError(`cannot read ${file}: ${(e as Error).message}`, {
        where: `agent ${a.name}: prompt_template`,
      });
    }
  }
  const command = a.start_command ?? (a.provider ? undefined : config.workspace.start_command);
  const presetName = a.provider ?? config.workspace.provider ?? 'generic';
  // A provider (agent CLI) with no prompt of its own gets the default one.
  // The generic preset is a plain shell: a prompt typed into it would run
  // as commands (its backquoted `gc ...` lines among them), so it gets none.
  if (template === undefined && command === undefined && presetName !== 'generic') {
    template = rig ? DEFAULT_RIG_PROMPT : DEFAULT_PROMPT;
  }
  const varsFor = (session: string, workDir: string, key = ''): PromptVars => ({
    Agent: qualified ?? a.name,
    SessionName: session,
    Rig: a.dir ?? '',
    RigRoot: rig?.path ?? '',
    WorkDir: workDir,
    CityName: config.workspace.name,
    CityRoot: root,
    Target: rig?.target ?? 'main',
    SessionKey: key,
    Alias: alias(session),
  });
  const render = (text: string, session: string, workDir: string): string => {
    const vars = varsFor(session, workDir);
    const body = renderTemplate(text, { ...vars }, fragments);
    // workspace.global_fragments follow every prompt, in order.
    const globals = (config.workspace.global_fragments ?? []).map((n) =>
      renderTemplate(`{{template ${JSON.stringify(n)} .}}`, { ...vars }, fragments).trim(),
    );
    return globals.length ? `${[body.trimEnd(), ...globals].join('\n\n')}\n` : body;
  };
  const promptFor = (session: string, workDir: string): string | undefined =>
    template === undefined ? undefined : render(template, session, workDir);
  const defaultPromptFor = (session: string, workDir: string): string =>
    render(rig ? DEFAULT_RIG_PROMPT : DEFAULT_PROMPT, session, workDir);
  // Commands may name {{.SessionKey}} (and the prompt's other variables).
  const commandFor = (text: string, session: string, workDir: string, wake?: Wake): string =>
    text.includes('{{')
      ? renderTemplate(text, { ...varsFor(session, workDir, wake?.key) }, fragments)
      : text;
  const build = (session: string, workDir: string, wake?: Wake): StartConfig => {
    const base: StartConfig = {
      work_dir: workDir,
      ...(a.env ? { env: a.env } : {}),
      ...(a.nudge ? { nudge: a.nudge } : {}),
      ...(a.process_names ? { process_names: a.process_names } : {}),
      ...(a.ready_prompt_prefix !== undefined
        ? { ready_prompt_prefix: a.ready_prompt_prefix }
        : {}),
      ...(a.ready_delay_ms !== undefined ? { ready_delay_ms: a.ready_delay_ms } : {}),
      ...(a.pre_start ? { pre_start: a.pre_start } : {}),
      ...(a.session_setup ? { session_setup: a.session_setup } : {}),
      ...(a.session_setup_script ? { session_setup_script: a.session_setup_script } : {}),
      ...(a.session_live ? { session_live: a.session_live } : {}),
      ...(a.overlay_dir ? { overlay_dir: path.resolve(root, a.overlay_dir) } : {}),
      ...(a.install_agent_hooks?.length ? { agent_hooks: a.install_agent_hooks } : {}),
    };
    if (wake?.resume && a.resume_command) {
      // The conversation it resumes already has its prompt.
      return { ...base, command: commandFor(a.resume_command, session, workDir, wake) };
    }
    const prompt = promptFor(session, workDir);
    if (command !== undefined) {
      const line = commandFor([command, ...(a.args ?? [])].join(' '), session, workDir, wake);
      const cfg: StartConfig = { ...base, command: line };
      if (prompt !== undefined && !cfg.nudge) cfg.nudge = prompt;
      return cfg;
    }
    const preset = mergePreset(presetName, config.providers[presetName]);
    if (a.args) preset.args = [...preset.args, ...a.args];
    if (a.prompt_mode) preset.promptMode = a.prompt_mode;
    return presetStartConfig(preset, { ...(prompt !== undefined ? { prompt } : {}), base });
  };
  return { start: build(a.name, defaultDir), startFor: build, promptFor, defaultPromptFor };
}

export function citySpec(loaded: LoadedConfig): CitySpec {
  const { config, root } = loaded;
  const rigs = new Map(config.rigs.map((r) => [r.name, r]));
  const fragments = loadFragments(loaded.packs ?? [{ dir: root }]);
  for (const name of config.workspace.global_fragments ?? []) {
    if (!fragments.has(name)) {
      throw new ValidationError(
        `no fragment ${JSON.stringify(name)} in any pack's template-fragments/`,
        { where: 'workspace.global_fragments' },
      );
    }
  }
  const agents = config.agent.map((a, i): AgentSpec => {
    const rig = a.dir ? rigs.get(a.dir) : undefined;
    if (a.dir && !rig) {
      throw new ValidationError(`rig ${JSON.stringify(a.dir)} is not declared in [[rigs]]`, {
        where: `agent ${a.name}: dir`,
      });
    }
    const pool = a.max_active_sessions !== undefined || a.scale_check !== undefined;
    const namepool = readNamepool(a, root);
    const { start, startFor, promptFor, defaultPromptFor } = agentStart(
      a,
      config,
      root,
      rig ? { path: path.resolve(root, rig.path), target: rig.target } : undefined,
      // {{.Agent}} is the Gas City name of an agent composed from a pack.
      loaded.origins?.[i]?.layers[0] === 'city.toml' ? undefined : loaded.origins?.[i]?.qualified,
      fragments,
      (session) => aliasOf({ name: a.name, pool, namepool }, session) ?? '',
    );
    return {
      name: a.name,
      rig: a.dir,
      pool,
      min: a.min_active_sessions,
      max: pool ? Math.max(a.max_active_sessions ?? 1, a.min_active_sessions) : 1,
      scaleCheck: a.scale_check,
      dependsOn: a.depends_on ?? [],
      suspended: a.suspended || (rig?.suspended ?? false),
      idleTimeoutMs: idleTimeout(a),
      onDemand: a.mode === 'on_demand',
      qualified: loaded.origins?.[i]?.qualified ?? a.name,
      drainTimeoutMs: ms(a.drain_timeout),
      start,
      startFor,
      // Without a resume_command there is nothing to resume with: every start is fresh.
      wakeMode: a.resume_command && a.wake_mode === 'resume' ? 'resume' : 'fresh',
      attach: a.attach,
      namepool,
      promptFor,
      defaultPromptFor,
      runEnv: a.run_env ?? [],
      fingerprint: hash({
        command: start.command,
        env: start.env,
        work_dir: start.work_dir,
        pre_start: start.pre_start,
        session_setup: start.session_setup,
        session_setup_script: start.session_setup_script,
      }),
    };
  });
  const names = new Set(agents.map((a) => a.name));
  for (const a of agents) {
    for (const d of a.dependsOn) {
      if (!names.has(d)) {
        throw new ValidationError(`depends on unknown agent ${JSON.stringify(d)}`, {
          where: `agent ${a.name}: depends_on`,
        });
      }
    }
  }
  const d = config.daemon;
  return {
    name: config.workspace.name,
    root,
    suspended: config.workspace.suspended,
    agents,
    rigCaps: new Map(
      config.rigs.flatMap((r) =>
        r.max_active_sessions !== undefined ? [[r.name, r.max_active_sessions] as const] : [],
      ),
    ),
    suspendedRigs: new Set(config.rigs.filter((r) => r.suspended).map((r) => r.name)),
    workspaceCap:
      config.workspace.max_active_sessions ?? hostSessionCap(config.workspace.session_memory_mb),
    daemon: {
      patrolIntervalMs: ms(d.patrol_interval),
      maxRestarts: d.max_restarts,
      restartWindowMs: ms(d.restart_window),
      shutdownTimeoutMs: ms(d.shutdown_timeout),
      probeConcurrency: d.probe_concurrency,
      maxWakesPerTick: d.max_wakes_per_tick,
      driftDrainTimeoutMs: ms(d.drift_drain_timeout),
    },
    startupTimeoutMs: ms(config.session.startup_timeout),
  };
}
