/**
 * Costs on a city server: the usage records (in the city's records), and
 * the leader's loop that reads new usage from the agent CLIs' files of the
 * sessions gc started, then checks the budgets and holds back (or stops)
 * the agents of tripped ones through the controller.
 */
import os from 'node:os';
import path from 'node:path';
import { errorMessage, parseDuration } from '../core/index.js';
import type { CityState } from '../city/index.js';
import type { Controller } from '../controller/index.js';
import type { LoadedConfig } from '../config/index.js';
import { BudgetWatch } from '../alerts/index.js';
import {
  UsageIngest,
  type Budget,
  type Place,
  type Price,
  type UsageRecord,
  type UsageRecords,
} from '../costs/index.js';
import type { Provider } from '../runtime/index.js';
import type { SessionWorktrees } from '../refinery/index.js';

export interface CostParts {
  state: CityState;
  config: () => LoadedConfig;
  usage: UsageRecords;
  controller: Controller;
  provider: Provider;
  worktrees: SessionWorktrees;
  /** Usage was added (metrics). */
  added?(records: readonly UsageRecord[]): void;
  log(line: string): void;
}

export function cityPrices(config: LoadedConfig['config']): Record<string, Price> {
  const out: Record<string, Price> = {};
  for (const [model, p] of Object.entries(config.costs.prices)) {
    out[model] = {
      input: p.input,
      output: p.output,
      cached_input: p.cached_input ?? p.input / 10,
      cache_write: p.cache_write ?? p.input * 1.25,
    };
  }
  return out;
}

/** How long a stopped session's folder is still read for usage. */
const LINGER_MS = 120_000;

export class CostWork {
  readonly budgets: BudgetWatch;
  private readonly ingest: UsageIngest;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  /** Places of sessions seen lately, by folder, and until when they are read after they go. */
  private readonly lately = new Map<string, { place: Place; until: number }>();

  constructor(private readonly p: CostParts) {
    const cfg = () => p.config().config;
    this.ingest = new UsageIngest({
      records: {
        add: (rs) => this.record(rs),
        totals: (q) => p.usage.totals(q),
        close: () => Promise.resolve(),
      },
      prices: () => this.prices(),
      log: (line) => p.log(line),
    });
    this.budgets = new BudgetWatch({
      budgets: () => cfg().budgets as Budget[],
      agents: () => p.controller.currentSpec.agents.map((a) => ({ name: a.name, rig: a.rig })),
      spent: async (b, since) => {
        const [kind, name] = [b.scope.split(':')[0], b.scope.slice(b.scope.indexOf(':') + 1)];
        const [t] = await p.usage.totals({
          since,
          ...(kind === 'agent' ? { agent: name } : kind === 'rig' ? { rig: name } : {}),
        });
        return b.usd !== undefined ? (t?.cost_usd ?? 0) : (t?.tokens ?? 0);
      },
      hold: (agents) => p.controller.hold(agents),
      stop: async (agents) => {
        const names = new Set(agents);
        for (const s of p.controller.status().sessions) {
          if (!s.agent || !names.has(s.agent) || !['running', 'draining'].includes(s.state))
            continue;
          await p.provider.stop(s.name);
          p.controller.sessionStopped(s.name);
        }
      },
      events: p.state.events,
      log: (line) => p.log(line),
    });
  }

  /** Add records (counted in /metrics when new); resolves with how many were new. */
  async record(records: readonly UsageRecord[]): Promise<number> {
    const n = await this.p.usage.add(records);
    if (n) this.p.added?.(records);
    return n;
  }

  prices(): Record<string, Price> {
    return cityPrices(this.p.config().config);
  }

  /**
   * Where the city's sessions work, and where stopped ones worked until
   * LINGER_MS ago: an agent CLI writes its last lines as it exits, after
   * the last pass that saw its session, and they are usage too.
   */
  private async places(): Promise<Place[]> {
    const now = Date.now();
    const current = await this.livePlaces();
    for (const place of current) this.lately.set(place.dir, { place, until: now + LINGER_MS });
    const live = new Set(current.map((p) => p.dir));
    const gone: Place[] = [];
    for (const [dir, l] of this.lately) {
      if (live.has(dir)) continue;
      if (l.until < now) this.lately.delete(dir);
      else gone.push(l.place);
    }
    return [...current, ...gone];
  }

  /** Where the city's sessions work, with the CLI folders to look in. */
  private async livePlaces(): Promise<Place[]> {
    const c = this.p.config().config;
    const spec = this.p.controller.currentSpec;
    const home = os.homedir();
    const agents = new Map(spec.agents.map((a) => [a.name, a]));
    const holding = new Map<string, string>();
    let cursor: string | undefined;
    do {
      const page = await this.p.state.store.list({
        status: 'in_progress',
        limit: 1000,
        ...(cursor ? { cursor } : {}),
      });
      for (const b of page.items)
        if (b.assignee && !holding.has(b.assignee)) holding.set(b.assignee, b.id);
      cursor = page.next_cursor ?? undefined;
    } while (cursor);
    const byDir = new Map<string, Place[]>();
    for (const s of this.p.controller.status().sessions) {
      const a = s.agent ? agents.get(s.agent) : undefined;
      if (!a) continue;
      const rig = a.rig ? c.rigs.find((r) => r.name === a.rig) : undefined;
      const dir = rig?.worktrees
        ? this.p.worktrees.dir(rig.name, s.name)
        : path.resolve(spec.root, a.start.work_dir ?? '.');
      const env = a.start.env ?? {};
      const bead = holding.get(s.name);
      const place: Place = {
        dir,
        agent: a.name,
        rig: a.rig ?? '',
        session: s.name,
        ...(bead ? { bead } : {}),
        claudeDir: path.resolve(
          spec.root,
          c.costs.claude_dir ||
            env.CLAUDE_CONFIG_DIR ||
            (env.HOME
              ? path.join(env.HOME, '.claude')
              : process.env.CLAUDE_CONFIG_DIR || path.join(home, '.claude')),
        ),
        codexDir: path.resolve(
          spec.root,
          c.costs.codex_dir ||
            env.CODEX_HOME ||
            (env.HOME
              ? path.join(env.HOME, '.codex')
              : process.env.CODEX_HOME || path.join(home, '.codex')),
        ),
      };
      byDir.set(dir, [...(byDir.get(dir) ?? []), place]);
    }
    // A folder several sessions share is the agent's, not one session's.
    return [...byDir.values()].map((ps) =>
      ps.length === 1 ? ps[0]! : { ...ps[0]!, session: '', bead: '' },
    );
  }

  /** One pass: new usage, then the budgets. */
  async pass(): Promise<void> {
    if (this.p.config().config.costs.ingest) {
      try {
        await this.ingest.pass(await this.places());
      } catch (e) {
        this.p.log(`costs: ${errorMessage(e)}`);
      }
    }
    await this.budgets.check();
  }

  async start(): Promise<void> {
    await this.budgets
      .takeUp()
      .catch((e: unknown) => this.p.log(`budgets: reading this window's: ${errorMessage(e)}`));
    const every = Math.max(100, parseDuration(this.p.config().config.costs.interval));
    this.timer = setInterval(() => {
      this.running ??= this.pass()
        .catch((e: unknown) => this.p.log(`costs: ${errorMessage(e)}`))
        .finally(() => (this.running = undefined));
    }, every);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
