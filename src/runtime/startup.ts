/**
 * Start-up steps shared by the providers that run real processes: check the
 * command exists, prepare the work dir (overlay, copied files), run
 * `pre_start` before and `session_setup`/`session_live` after, then wait for
 * readiness, dismissing known start-up dialogs, and send the first nudge.
 *
 * The commands in a start config come from city.toml, written by the city's
 * operator, so they run through `sh -c` like any configured hook. Nothing a
 * client or agent sends at run time is ever put in a shell string.
 */
import { installAgentHooks } from './agent-hooks.js';
import { constants } from 'node:fs';
import { access, cp, mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { GcError, ValidationError, errorMessage } from '../core/index.js';
import { SessionDiedDuringStartupError } from './errors.js';
import type { Provider } from './provider.js';
import { runFile } from '../core/index.js';
import type { StartConfig } from './start-config.js';
import { resolveInside } from './validate.js';

/** Time limit of each pre_start / session_setup command. */
export const SETUP_COMMAND_TIMEOUT_MS = 120_000;
/** How often readiness polls the session output. */
const READY_POLL_MS = 100;

const SHELL_WORDS = new Set(
  '! [ [[ . : alias bg builtin case cd command declare eval exec exit export fg for function if jobs let local read readonly return set shift source test time trap ulimit umask unset until wait while {'.split(
    ' ',
  ),
);

/**
 * Indices of requests that name a session an earlier request of the same
 * wave names: only the first starts, the others are SessionExistsError.
 */
export function repeatedNames(requests: readonly { name: string }[]): Set<number> {
  const seen = new Set<string>();
  const out = new Set<number>();
  for (const [i, r] of requests.entries()) {
    if (seen.has(r.name)) out.add(i);
    seen.add(r.name);
  }
  return out;
}

/** The environment a session and its hooks see. */
export function sessionEnv(config: StartConfig): NodeJS.ProcessEnv {
  return { ...process.env, ...config.env };
}

/**
 * Fail fast, with a clear error, when the command's program does not exist.
 * Only simple commands are checked; anything with shell syntax in its first
 * word is left to the shell.
 */
export async function checkCommand(config: StartConfig): Promise<void> {
  const command = config.command?.trim();
  if (!command) return;
  const words = command.split(/\s+/);
  let i = 0;
  while (i < words.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(words[i]!)) i++;
  const program = words[i];
  if (!program || SHELL_WORDS.has(program) || /[$`"'\\(){}[\]*?<>|;&~]/.test(program)) return;
  const env = sessionEnv(config);
  const cwd = config.work_dir ?? process.cwd();
  if (await findExecutable(program, env.PATH ?? '', cwd)) return;
  throw new ValidationError(
    `${program}: command not found${program.includes('/') ? '' : ' on PATH'}`,
    {
      where: 'command',
      fix: 'install it, fix the agent start_command, or set PATH in the agent env',
      details: { command: program },
    },
  );
}

/**
 * The executable file `program` names: a path (resolved from `cwd`) or a
 * name looked up on `PATH`. Undefined when there is none.
 */
export async function findExecutable(
  program: string,
  PATH: string,
  cwd: string = process.cwd(),
): Promise<string | undefined> {
  const candidates = program.includes('/')
    ? [path.resolve(cwd, program)]
    : PATH.split(':').map((d) => path.join(d || '.', program));
  for (const c of candidates) {
    try {
      await access(c, constants.X_OK);
      if ((await stat(c)).isFile()) return c;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

/** Check the work dir exists and apply overlay_dir, copy_files and agent hooks to it. */
export async function prepareWorkDir(config: StartConfig): Promise<void> {
  const dir = config.work_dir;
  if (dir === undefined) return;
  const s = await stat(dir).catch(() => undefined);
  if (!s?.isDirectory()) {
    throw new ValidationError(`${dir} is not a directory`, { where: 'work_dir' });
  }
  if (config.overlay_dir && (await stat(config.overlay_dir).catch(() => undefined))) {
    // Never over a file already there (the agent's own work survives a restart).
    await cp(config.overlay_dir, dir, { recursive: true, force: false, errorOnExist: false });
  }
  for (const f of config.copy_files ?? []) await copyInto(dir, f.src, f.rel_dst);
  if (config.agent_hooks?.length) await installAgentHooks(dir, config.agent_hooks);
}

/** copy-to semantics: missing source is a no-op; destination stays inside `workDir`. */
export async function copyInto(workDir: string, src: string, relDst: string): Promise<void> {
  const dst = resolveInside(workDir, relDst);
  const s = await stat(src).catch(() => undefined);
  if (!s) return;
  await mkdir(path.dirname(dst), { recursive: true });
  await cp(src, dst, { recursive: true, force: true });
}

async function runHook(
  kind: string,
  command: string,
  config: StartConfig,
  direct?: readonly string[],
): Promise<void> {
  const [file, args] = direct ? [command, direct] : ['/bin/sh', ['-c', command]];
  const r = await runFile(file, args, {
    env: sessionEnv(config),
    ...(config.work_dir ? { cwd: config.work_dir } : {}),
    timeoutMs: SETUP_COMMAND_TIMEOUT_MS,
  }).catch((e: unknown) => {
    throw new GcError('invalid', `${kind} could not run: ${command}: ${errorMessage(e)}`, {
      details: { step: kind, command },
    });
  });
  if (r.code !== 0) {
    const why = r.timedOut ? `timed out after ${SETUP_COMMAND_TIMEOUT_MS} ms` : `exit ${r.code}`;
    throw new GcError(
      'invalid',
      `${kind} command failed (${why}): ${command}\n${r.stderr.trim()}`,
      {
        details: { step: kind, command, exit_code: r.code },
        fix: `fix the ${kind} entry of the agent in city.toml`,
      },
    );
  }
}

export async function runPreStart(config: StartConfig): Promise<void> {
  for (const c of config.pre_start ?? []) await runHook('pre_start', c, config);
}

/** session_setup, session_setup_script, then session_live. */
export async function runSessionSetup(config: StartConfig): Promise<void> {
  for (const c of config.session_setup ?? []) await runHook('session_setup', c, config);
  if (config.session_setup_script) {
    // Executed directly, not through a shell: the path is data, not code.
    await runHook('session_setup_script', config.session_setup_script, config, []);
  }
  for (const c of config.session_live ?? []) await runHook('session_live', c, config);
}

const ANSI = new RegExp(String.raw`\u001b\[[0-9;?]*[ -/]*[@-~]|\u001b\][^\u0007]*\u0007`, 'g');

/** Output as text: escape sequences removed. */
export function stripAnsi(text: string): string {
  return text.replace(ANSI, '');
}

/** A line that starts (after box-drawing and spaces) with the ready prefix. */
export function showsReadyPrompt(output: string, prefix: string): boolean {
  const want = prefix.trim();
  if (!want) return false;
  return stripAnsi(output)
    .split('\n')
    .some((l) => l.replace(/^[\s\u2500-\u257f]+/, '').startsWith(want));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * With dialogs and no ready prompt or ready delay: the session is ready once
 * no listed dialog has appeared for this long.
 */
export const DIALOG_SETTLE_MS = 2000;

/**
 * After the process started: wait until the session is ready, then send the
 * first nudge. Listed start-up dialogs are alternatives (a CLI shows some of
 * them, in any order, or none): each one that appears is dismissed once.
 * Ready means the ready prompt when the config names one; otherwise the
 * ready delay (or DIALOG_SETTLE_MS when there are dialogs) passed with no
 * new dialog. A session that dies meanwhile is a
 * `SessionDiedDuringStartupError`; one not ready by the deadline is stopped
 * and the start fails with the end of the screen it showed.
 */
export async function awaitReady(
  provider: Provider,
  name: string,
  config: StartConfig,
  deadline: number,
): Promise<void> {
  const dialogs = config.startup_dialogs ?? [];
  const prefix = config.ready_prompt_prefix;
  if (prefix || dialogs.length) {
    const settle = config.ready_delay_ms ?? DIALOG_SETTLE_MS;
    const dismissed = new Set<number>();
    let quietSince = Date.now();
    for (;;) {
      const output = stripAnsi(await provider.peek(name, 200));
      if (prefix && showsReadyPrompt(output, prefix)) break;
      for (const [i, d] of dialogs.entries()) {
        if (!dismissed.has(i) && output.includes(d.match)) {
          dismissed.add(i);
          quietSince = Date.now();
          await provider.sendKeys(name, d.keys);
        }
      }
      if (!(await provider.isRunning(name))) {
        const snap = (await provider.snapshot(name)).find((s) => s.name === name);
        // Peek again: the process may have written its last words between
        // the first peek and its exit.
        const last = stripAnsi(await provider.peek(name, 200).catch(() => output));
        throw new SessionDiedDuringStartupError(name, tail(last || output, 20), snap?.exitCode);
      }
      if (!prefix && Date.now() - quietSince >= settle) break;
      if (Date.now() >= deadline) {
        await provider.stop(name).catch(() => undefined);
        const screen = tail(output, 5);
        throw new GcError(
          'unavailable',
          `session ${name} ${prefix ? `did not show its ready prompt ${JSON.stringify(prefix)}` : 'was still showing start-up dialogs'} at the start deadline; its screen ended with:\n${screen || '(nothing)'}`,
          {
            details: {
              session: name,
              screen,
              dialogs_dismissed: [...dismissed].map((i) => dialogs[i]!.match),
            },
            fix: 'raise [session] startup_timeout, check ready_prompt_prefix, or add the screen above to the provider startup_dialogs',
          },
        );
      }
      await sleep(READY_POLL_MS);
    }
  } else if (config.ready_delay_ms) {
    await sleep(Math.min(config.ready_delay_ms, Math.max(0, deadline - Date.now())));
  }
  if (config.nudge) {
    try {
      await provider.nudge(name, config.nudge);
    } catch (e) {
      throw new GcError('invalid', `first nudge of session ${name} failed: ${errorMessage(e)}`, {
        cause: e,
      });
    }
  }
}

/** The last `lines` non-blank lines (a terminal pads its screen with blanks). */
function tail(text: string, lines: number): string {
  return text
    .split('\n')
    .filter((l) => l.trim() !== '')
    .slice(-lines)
    .join('\n');
}
