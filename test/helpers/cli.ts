/** Run the real gc / bd programs as child processes (no in-process shortcuts). */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export const REPO = join(import.meta.dirname, '..', '..');
/** tsx's loader by absolute URL: `--import tsx` would resolve from the child's cwd. */
export const TSX = pathToFileURL(createRequire(join(REPO, 'package.json')).resolve('tsx')).href;

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function runCli(
  prog: 'gc' | 'bd',
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {},
): Promise<CliResult> {
  const entry = join(REPO, 'src', 'cli', `${prog}.ts`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', TSX, entry, ...args], {
      cwd: options.cwd ?? REPO,
      env: {
        ...process.env,
        GC_SESSION_NAME: '',
        GC_AGENT: '',
        GC_CITY_ROOT: '',
        USER: 'tester',
        ...options.env,
      },
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

export const gc = (args: string[], options?: Parameters<typeof runCli>[2]): Promise<CliResult> =>
  runCli('gc', args, options);
export const bd = (args: string[], options?: Parameters<typeof runCli>[2]): Promise<CliResult> =>
  runCli('bd', args, options);
