/** Run the real gc / bd programs as child processes (no in-process shortcuts). */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const REPO = join(import.meta.dirname, '..', '..');
/**
 * Where the tests' admin keys go (GC_CONFIG_HOME), instead of the user's
 * ~/.config/gc: one directory per test process.
 */
export const CONFIG_HOME = mkdtempSync(join(tmpdir(), 'gc-test-config-'));
process.on('exit', () => rmSync(CONFIG_HOME, { recursive: true, force: true }));
/** tsx's loader by absolute URL: `--import tsx` would resolve from the child's cwd. */
export const TSX = pathToFileURL(createRequire(join(REPO, 'package.json')).resolve('tsx')).href;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment every test CLI run starts from: no session identity, test key dir. */
function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    GC_SESSION_NAME: '',
    GC_AGENT: '',
    GC_CITY_ROOT: '',
    GC_TOKEN: '',
    GC_API: '',
    GC_CONFIG_HOME: CONFIG_HOME,
    USER: 'tester',
    ...extra,
  };
}

/** Run node with `args`, feed `input`, collect the exit code and output. */
function runNode(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string },
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      cwd: options.cwd ?? REPO,
      env: cliEnv(options.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    child.stdin.end(options.input ?? '');
  });
}

export function runCli(
  prog: 'gc' | 'bd',
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
): Promise<CliResult> {
  return runNode(['--import', TSX, join(REPO, 'src', 'cli', `${prog}.ts`), ...args], options);
}

export const gc = (args: string[], options?: Parameters<typeof runCli>[2]): Promise<CliResult> =>
  runCli('gc', args, options);
export const bd = (args: string[], options?: Parameters<typeof runCli>[2]): Promise<CliResult> =>
  runCli('bd', args, options);

/** Run the built gc (dist/, made by the global setup), as an installed gc runs. */
export function gcBuilt(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult> {
  return runNode([join(REPO, 'dist', 'cli', 'gc.js'), ...args], options);
}

/**
 * Run the built gc on a terminal (a pseudo-terminal from util-linux
 * `script`), as a person at a shell runs it: what it printed there, stdout
 * and stderr together, terminal control sequences included.
 */
export function gcBuiltOnTty(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult> {
  const q = (w: string) => `'${w.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, join(REPO, 'dist', 'cli', 'gc.js'), ...args].map(q).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], {
      cwd: options.cwd ?? REPO,
      env: cliEnv(options.env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const spawned = new Set<ChildProcessWithoutNullStreams>();

/**
 * Start the built gc and leave it running (a follower, a server in the
 * foreground): the caller reads its output as it comes. Every child started
 * here is killed by `killSpawned()` (call it in afterEach), so a failed
 * assertion never leaks a process.
 */
export function spawnBuilt(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): ChildProcessWithoutNullStreams {
  const child = spawn(process.execPath, [join(REPO, 'dist', 'cli', 'gc.js'), ...args], {
    cwd: options.cwd ?? REPO,
    env: cliEnv(options.env),
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  spawned.add(child);
  child.on('exit', () => spawned.delete(child));
  return child;
}

/** Kill every child `spawnBuilt` started that is still running. */
export function killSpawned(): void {
  for (const child of spawned) child.kill('SIGKILL');
  spawned.clear();
}

/**
 * Resolve with the first `n` stdout lines of `child`; reject when it exits
 * first (with its stderr) or after `ms`.
 */
export function stdoutLines(
  child: ChildProcessWithoutNullStreams,
  n: number,
  ms = 20_000,
): Promise<string[]> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(
      () => reject(new Error(`no ${n} lines within ${ms} ms; stdout: ${out} stderr: ${err}`)),
      ms,
    );
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const lines = out.split('\n');
      if (lines.length > n) {
        clearTimeout(timer);
        resolve(lines.slice(0, n));
      }
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(
        new Error(`exited (${code ?? signal}) before ${n} lines; stdout: ${out} stderr: ${err}`),
      );
    });
  });
}

/**
 * The built gc on the city at `root()` (read at each call, so a test may set
 * it later): `g(...args)` runs it, `json(...args)` adds --json and parses
 * stdout, throwing with stderr when the command fails.
 */
export function cityCli(root: () => string): {
  g: (...args: string[]) => Promise<CliResult>;
  json: <T>(...args: string[]) => Promise<T>;
} {
  const g = (...args: string[]) => gcBuilt(['--city', root(), ...args]);
  const json = async <T>(...args: string[]): Promise<T> => {
    const r = await g(...args, '--json');
    if (r.code !== 0) throw new Error(`gc ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  };
  return { g, json };
}
