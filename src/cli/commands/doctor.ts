/**
 * `gc doctor [--fix] [-v]`: the city's health in one list of checks, each
 * ok, warn or error with what to do about it: config (and what preflight
 * finds: rigs, commands, prompts), the server, sessions (quarantined,
 * dead, and sessions running while the city is stopped), the work store,
 * the event log, rig worktrees, then each pack's doctor scripts
 * (`doctor/<name>/run.sh`: exit 0 = ok, 1 = warning, anything else = error;
 * the first line of its output is the message). `--fix` repairs what is
 * safe to repair (prunes stale worktrees; stops sessions left running by a
 * stopped city). Exit status: 0 all ok, 1 warnings, 2 errors.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { errorMessage, runFile } from '../../core/index.js';
import type { LoadedConfig } from '../../config/index.js';
import { connectServer, withCity, type GlobalOptions } from '../context.js';
import { printJson, printLine } from '../output.js';

export type CheckStatus = 'ok' | 'warn' | 'error';

export interface Check {
  name: string;
  status: CheckStatus;
  message: string;
  fix?: string;
  /** What --fix did. */
  fixed?: string;
  details?: string[];
}

const RANK: Record<CheckStatus, number> = { ok: 0, warn: 1, error: 2 };

async function configChecks(root: string, out: Check[]): Promise<LoadedConfig | undefined> {
  const { loadCityConfig, ConfigError, formatIssue } = await import('../../config/index.js');
  let loaded: LoadedConfig;
  try {
    loaded = await loadCityConfig(path.join(root, 'city.toml'));
  } catch (e) {
    out.push({
      name: 'config',
      status: 'error',
      message: e instanceof ConfigError ? `${e.issues.length} problems` : errorMessage(e),
      ...(e instanceof ConfigError ? { details: e.issues.map(formatIssue) } : {}),
      fix: 'gc config validate shows each problem at its file and line',
    });
    return undefined;
  }
  const { preflight } = await import('../../controller/index.js');
  const pre = await preflight(loaded);
  const warnings = [...loaded.warnings, ...pre.warnings].map(formatIssue);
  out.push({
    name: 'config',
    status: pre.errors.length ? 'error' : warnings.length ? 'warn' : 'ok',
    message: pre.errors.length
      ? `${pre.errors.length} errors before anything runs`
      : `${loaded.config.agent.length} agents, ${loaded.config.rigs.length} rigs${warnings.length ? `, ${warnings.length} warnings` : ''}`,
    ...(pre.errors.length || warnings.length
      ? { details: [...pre.errors.map(formatIssue), ...warnings] }
      : {}),
  });
  return loaded;
}

interface SessionRow {
  name: string;
  state: string;
  reason?: string;
}

async function serverChecks(g: GlobalOptions, fix: boolean, out: Check[]): Promise<void> {
  const { root, city } = await connectServer(g);
  if (city) {
    const st = await city.call<{ controller: { sessions: SessionRow[]; last_error?: string } }>(
      'GET',
      '/v0/status',
    );
    out.push({ name: 'server', status: 'ok', message: 'running' });
    const sessions = st.controller.sessions;
    const bad = sessions.filter((s) => ['quarantined', 'dead'].includes(s.state));
    out.push({
      name: 'sessions',
      status: bad.some((s) => s.state === 'quarantined') ? 'error' : bad.length ? 'warn' : 'ok',
      message: bad.length
        ? `${bad.length} of ${sessions.length} sessions need attention`
        : `${sessions.length} sessions`,
      ...(bad.length
        ? {
            details: bad.map((s) => `${s.name}: ${s.state}${s.reason ? ` (${s.reason})` : ''}`),
            fix: 'gc session logs NAME shows why; gc session reset NAME lets a quarantined one start again',
          }
        : {}),
    });
    return;
  }
  out.push({
    name: 'server',
    status: 'warn',
    message: 'not running: no sessions are started or watched',
    fix: 'gc start',
  });
  // Sessions left running by a stopped city: the next start adopts them.
  const { loadCityConfig } = await import('../../config/index.js');
  const { openProvider } = await import('../../runtime/index.js');
  let names: string[];
  try {
    const loaded = await loadCityConfig(path.join(root, 'city.toml'));
    const provider = openProvider(loaded.config.session.provider, { cityRoot: root });
    try {
      names = await provider.listRunning('');
      if (fix && names.length) {
        for (const n of names) await provider.stop(n);
        out.push({
          name: 'sessions',
          status: 'ok',
          message: `stopped ${names.length} sessions left running`,
          fixed: names.join(', '),
        });
        return;
      }
    } finally {
      await provider.close();
    }
  } catch (e) {
    out.push({ name: 'sessions', status: 'error', message: errorMessage(e) });
    return;
  }
  out.push({
    name: 'sessions',
    status: names.length ? 'warn' : 'ok',
    message: names.length
      ? `${names.length} sessions run while the city is stopped`
      : 'none running (the city is stopped)',
    ...(names.length
      ? {
          details: names,
          fix: 'gc start adopts them; gc doctor --fix stops them',
        }
      : {}),
  });
}

async function storeChecks(g: GlobalOptions, out: Check[]): Promise<void> {
  try {
    await withCity(g, 'doctor', async (city) => {
      const counts = await city.beadCounts();
      out.push({
        name: 'store',
        status: 'ok',
        message: Object.entries(counts)
          .map(([k, v]) => `${v} ${k}`)
          .join(', '),
      });
      const latest = await city.latestEventSeq();
      const page = await city.listEvents({ afterSeq: Math.max(0, latest - 1000) });
      const corrupt = page.corrupt ?? [];
      out.push({
        name: 'events',
        status: corrupt.length ? 'warn' : 'ok',
        message: corrupt.length
          ? `${corrupt.length} damaged lines in the newest events`
          : `latest seq ${latest}`,
        ...(corrupt.length
          ? {
              details: corrupt.map((c) => `${c.file} at byte ${c.offset}: ${c.error}`),
              fix: 'move the damaged file aside (docs/events.md)',
            }
          : {}),
      });
    });
  } catch (e) {
    out.push({ name: 'store', status: 'error', message: errorMessage(e) });
  }
}

async function worktreeChecks(loaded: LoadedConfig, fix: boolean, out: Check[]): Promise<void> {
  const { Git } = await import('../../git/index.js');
  for (const rig of loaded.config.rigs) {
    const dir = path.resolve(loaded.root, rig.path);
    if (!existsSync(dir)) continue; // preflight reports it
    const git = new Git(dir);
    const list = await git.exec(['worktree', 'list', '--porcelain']);
    if (list.code !== 0) continue;
    const stale = list.stdout
      .split('\n\n')
      .filter((b) => /^prunable/m.test(b))
      .map((b) => /^worktree (.*)$/m.exec(b)?.[1] ?? '?');
    if (stale.length && fix) await git.run(['worktree', 'prune']);
    out.push({
      name: `worktrees:${rig.name}`,
      status: stale.length && !fix ? 'warn' : 'ok',
      message: stale.length
        ? `${stale.length} stale worktrees${fix ? ' pruned' : ''}`
        : 'no stale worktrees',
      ...(stale.length ? { details: stale } : {}),
      ...(stale.length && !fix ? { fix: 'gc doctor --fix prunes them (git worktree prune)' } : {}),
    });
  }
}

/** Each composed pack's `doctor/<name>/run.sh`, as `<pack>:<name>`. */
async function packChecks(loaded: LoadedConfig, out: Check[]): Promise<void> {
  const { readdir } = await import('node:fs/promises');
  for (const pack of loaded.packs ?? []) {
    const dir = path.join(pack.dir, 'doctor');
    if (!existsSync(dir)) continue;
    for (const entry of (await readdir(dir)).sort()) {
      const script = path.join(dir, entry, 'run.sh');
      if (!existsSync(script)) continue;
      const r = await runFile(script, [], {
        cwd: loaded.root,
        env: { ...process.env, GC_CITY_ROOT: loaded.root, PACK_DIR: pack.dir },
        timeoutMs: 30_000,
      });
      const text = (r.stdout.trim() || r.stderr.trim()).split('\n');
      const status: CheckStatus = r.code === 0 ? 'ok' : r.code === 1 ? 'warn' : 'error';
      out.push({
        name: `${pack.name}:${entry}`,
        status,
        message: r.timedOut ? 'timed out after 30 s' : text[0] || `exit status ${r.code}`,
        ...(text.length > 1 ? { details: text.slice(1) } : {}),
      });
    }
  }
}

export async function doctor(
  g: GlobalOptions,
  o: { fix?: boolean; verbose?: boolean },
): Promise<number> {
  const { cityRoot } = await import('../context.js');
  const root = cityRoot(g);
  const checks: Check[] = [];
  const loaded = await configChecks(root, checks);
  if (loaded) {
    await serverChecks(g, o.fix === true, checks);
    await storeChecks(g, checks);
    await worktreeChecks(loaded, o.fix === true, checks);
    await packChecks(loaded, checks);
  }
  const worst = checks.reduce<CheckStatus>(
    (w, c) => (RANK[c.status] > RANK[w] ? c.status : w),
    'ok',
  );
  if (g.json) printJson({ status: worst, checks });
  else {
    for (const c of checks) {
      const mark = c.status === 'ok' ? 'ok   ' : c.status === 'warn' ? 'WARN ' : 'ERROR';
      printLine(`${mark} ${c.name}: ${c.message}`);
      if (c.details && (o.verbose || c.status !== 'ok')) {
        for (const d of c.details) printLine(`        ${d}`);
      }
      if (c.fixed) printLine(`        fixed: ${c.fixed}`);
      if (c.fix && c.status !== 'ok') printLine(`        fix: ${c.fix}`);
    }
  }
  return RANK[worst];
}
