/**
 * Costs and budgets on a real city server with real processes (the
 * subprocess provider): a stand-in agent CLI writes Claude Code
 * transcripts; the leader ingests them (each request once, subagent
 * transcripts included), warns at 50% of the agent's daily token budget,
 * trips it and suspends the agent (its session stops and is not started
 * again); raising the budget in city.toml resets it and the agent runs
 * again. gc costs, gc cost record and GET /metrics show it.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAdminKey } from '../src/city/index.js';
import { CityServer } from '../src/server/index.js';
import type { CostsView } from '../src/client/index.js';
import type { GcEvent } from '../src/events/index.js';
import { CONFIG_HOME, REPO, TSX, gcBuilt } from './helpers/cli.js';
import { apiCall } from './helpers/http.js';
import { until } from './helpers/wait.js';

let root = '';
let server: CityServer;
const gc = (args: string[]) => gcBuilt(['--city', root, '--actor', 'mayor', ...args]);
const json = async <T>(args: string[]): Promise<T> => {
  const r = await gc([...args, '--json']);
  expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
  return JSON.parse(r.stdout) as T;
};
const budgetEvents = async () =>
  (await json<GcEvent[]>(['events', '--type', 'budget.*'])).map((e) => e.type);

const cityToml = (tokens: number) =>
  [
    '[workspace]',
    'name = "spend"',
    '[daemon]',
    'patrol_interval = "200ms"',
    '[costs]',
    'interval = "200ms"',
    '[[agent]]',
    'name = "coder"',
    `start_command = "node --import '${TSX}' '${path.join(REPO, 'test', 'fixtures', 'fake-claude.ts')}'"`,
    'drain_timeout = "1s"',
    '[agent.env]',
    `CLAUDE_CONFIG_DIR = "${path.join(root, 'claude')}"`,
    `FAKE_CLAUDE_HOOK_OUT = "${path.join(root, 'hook.json')}"`,
    `FAKE_CLAUDE_GC = "${path.join(REPO, 'dist', 'cli', 'gc.js')}"`,
    '[[budgets]]',
    'name = "coder-daily"',
    'scope = "agent:coder"',
    'window = "day"',
    `tokens = ${tokens}`,
    'warn = [50]',
    'action = "suspend"',
    '',
  ].join('\n');

/** Distinct request ids in every transcript the stand-in wrote. */
function requestsWritten(): number {
  const ids = new Set<string>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.jsonl')) {
        for (const line of readFileSync(p, 'utf8').split('\n')) {
          if (!line) continue;
          const v = JSON.parse(line) as { requestId?: string };
          if (v.requestId) ids.add(v.requestId);
        }
      }
    }
  };
  walk(path.join(root, 'claude', 'projects'));
  return ids.size;
}

beforeAll(async () => {
  process.env.GC_CONFIG_HOME = CONFIG_HOME;
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-costs-'));
  await writeFile(path.join(root, 'city.toml'), cityToml(30_000));
  server = await CityServer.start({ root, sessionProvider: 'subprocess', log: () => undefined });
});
afterAll(async () => {
  await server?.stop('test');
  await rm(root, { recursive: true, force: true });
});

/** Sessions of the coder still alive (a draining one still writes). */
const running = async () =>
  (await json<{ name: string; state: string }[]>(['session', 'list'])).filter(
    (s) => s.name === 'coder' && ['running', 'draining', 'starting'].includes(s.state),
  ).length;

describe('costs and budgets', () => {
  it('transcripts are ingested once each; the budget warns, trips and suspends the agent', async () => {
    await until(
      'the budget to trip',
      budgetEvents,
      (e) => e.includes('budget.tripped'),
      60_000,
      100,
    );
    expect(await budgetEvents()).toEqual(['budget.warned', 'budget.tripped']);
    await until('the coder stopped', running, (n) => n === 0, 30_000, 100);
    // Stopped, it writes no more: ingestion catches up with exactly what was
    // written, its last words on SIGTERM included (written after the last
    // pass that saw its session).
    const written = requestsWritten();
    expect(written).toBeGreaterThanOrEqual(20);
    // Every request once, and the Stop hook's record (below).
    const v = await until(
      'every request recorded',
      () => json<CostsView>(['costs', '--by', 'agent']),
      (x) => x.totals[0]?.records === written + 1,
      10_000,
      100,
    );
    expect(v.totals).toMatchObject([
      { key: 'coder', input_tokens: written * 1000 + 4000, output_tokens: written * 500 + 400 },
    ]);
    // The price table gave dollars: sonnet $3 in, $15 out per million; haiku $1 and $5.
    expect(v.totals[0]!.cost_usd).toBeCloseTo(written * (0.003 + 0.0075) + 0.006, 6);
    expect(v.budgets).toMatchObject([
      { name: 'coder-daily', unit: 'tokens', amount: 30_000, tripped: true, holding: ['coder'] },
    ]);
    const models = await json<CostsView>(['costs', '--by', 'model', '--since', '1h']);
    expect(models.totals.map((t) => t.key)).toEqual([
      'claude-sonnet-4-5-20250929',
      'claude-haiku-4-5',
    ]);
    const human = await gc(['costs']);
    expect(human.stdout).toMatch(
      /coder-daily\s+agent:coder\s+day\s+\S+\s+30\.0k\s+0\s+tripped \(holding coder\)\s+suspend/,
    );
    // Held: the controller does not start it again.
    await new Promise((r) => setTimeout(r, 1500));
    expect(await running()).toBe(0);
  });

  it('a session records its own usage (a Stop hook), never another’s', async () => {
    const hook = JSON.parse(readFileSync(path.join(root, 'hook.json'), 'utf8')) as {
      own: { code: number; out: string };
      other: { code: number; out: string };
    };
    expect(hook.own.code, hook.own.out).toBe(0);
    expect(JSON.parse(hook.own.out)).toMatchObject({
      added: true,
      record: { session: 'coder', agent: 'coder', model: 'claude-haiku-4-5', cost_usd: 0.006 },
    });
    expect(hook.other.code).not.toBe(0);
    expect(hook.other.out).toMatch(/agent coder may record only its own usage, not someone-else's/);
    const bySession = await json<CostsView>(['costs', '--by', 'model']);
    expect(bySession.totals.map((t) => t.key)).toContain('claude-haiku-4-5');
  });

  it('gc cost record: priced from the table, once per id; bad input refused', async () => {
    const args = [
      'cost',
      'record',
      '--model',
      'gpt-5',
      '--input',
      '1000000',
      '--output',
      '100000',
      '--session',
      'coder',
      '--id',
      'stop-1',
    ];
    const first = await json<{ added: boolean; record: { cost_usd: number; agent: string } }>(args);
    expect(first.added).toBe(true);
    expect(first.record).toMatchObject({ agent: 'coder', cost_usd: 1.25 + 1 });
    expect((await json<{ added: boolean }>(args)).added).toBe(false);
    const bad = await gc(['cost', 'record', '--model', 'gpt-5', '--input', '12.5']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--input must be a whole number of tokens/);
    const by = await gc(['costs', '--by', 'owner']);
    expect(by.code).not.toBe(0);
    expect(by.stderr).toMatch(/--by must be one of agent, rig, bead, model, session, provider/);
  });

  it('GET /metrics: tokens by agent and model, what is left of the budget', async () => {
    const r = await apiCall({ socketPath: path.join(root, '.gc', 'gc.sock') }, 'GET', '/metrics', {
      token: readAdminKey(root)!,
    });
    expect(r.text).toMatch(
      /^gc_usage_tokens_total\{agent="coder",model="claude-sonnet-4-5-20250929",kind="output"\} \d+/m,
    );
    expect(r.text).toMatch(/^gc_budget_remaining\{budget="coder-daily",unit="tokens"\} 0$/m);
  });

  it('raising the budget resets it and the agent runs again', async () => {
    await writeFile(path.join(root, 'city.toml'), cityToml(100_000_000));
    await json(['reload']);
    await until('the budget reset', budgetEvents, (e) => e.includes('budget.reset'), 30_000, 100);
    await until('the coder running again', running, (n) => n === 1, 30_000, 100);
    const reset = (await json<GcEvent[]>(['events', '--type', 'budget.reset']))[0]!;
    expect(reset.payload).toMatchObject({ budget: 'coder-daily', why: 'raised' });
  });
});
