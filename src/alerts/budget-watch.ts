/**
 * The leader's budget watch: after each usage pass it adds up each
 * budget's spend in its window, steps it (costs/budgets.ts) and records
 * `budget.warned`, `budget.tripped` and `budget.reset`. Budgets whose
 * action is suspend or stop hold their agents back in the controller
 * (suspended as if city.toml said so: their sessions drain, none starts);
 * stop also stops their sessions at the trip. A new leader takes up this window's warnings and trips from
 * the log, so nothing is announced twice and held agents stay held.
 */
import { errorMessage, systemClock, type Clock } from '../core/index.js';
import {
  agentsIn,
  amountOf,
  stepBudget,
  windowEnd,
  windowStart,
  type Budget,
  type BudgetChange,
  type BudgetState,
} from '../costs/index.js';
import type { EventLog } from '../events/index.js';

export interface BudgetHost {
  budgets(): Budget[];
  agents(): { name: string; rig: string | undefined }[];
  /** Dollars (or tokens) spent in the scope since `since`. */
  spent(b: Budget, since: number): Promise<number>;
  hold(agents: ReadonlySet<string>): void;
  /** Stop the running sessions of these agents now. */
  stop(agents: readonly string[]): Promise<void>;
  events: EventLog;
  log(line: string): void;
  clock?: Clock;
}

export interface BudgetView {
  name: string;
  scope: string;
  window: string;
  unit: 'usd' | 'tokens';
  amount: number;
  spent: number;
  remaining: number;
  window_start: string;
  window_end: string;
  warned: number[];
  tripped: boolean;
  action: string;
  /** The agents it holds back now. */
  holding: string[];
}

export class BudgetWatch {
  private readonly states = new Map<string, BudgetState>();
  private readonly spentNow = new Map<string, number>();
  private readonly clock: Clock;

  constructor(private readonly host: BudgetHost) {
    this.clock = host.clock ?? systemClock;
  }

  /** This window's warnings and trips from the log. */
  async takeUp(): Promise<void> {
    const now = this.clock.now();
    const budgets = this.host.budgets();
    if (!budgets.length) return;
    const since = Math.min(...budgets.map((b) => windowStart(b.window, now)));
    let after = 0;
    for (;;) {
      const p = await this.host.events.list({
        type: ['budget.warned', 'budget.tripped', 'budget.reset'],
        since: new Date(since).toISOString(),
        afterSeq: after,
        limit: 1000,
      });
      for (const e of p.items) {
        const x = e.payload as { budget?: string; window_start?: number; threshold?: number };
        const b = budgets.find((y) => y.name === x.budget);
        if (!b || x.window_start !== windowStart(b.window, now)) continue;
        const s = this.states.get(b.name) ?? {
          windowStart: x.window_start,
          warned: [],
          tripped: false,
        };
        if (e.type === 'budget.warned' && x.threshold !== undefined) {
          s.warned.push(...b.warn.filter((t) => t <= x.threshold!));
        }
        if (e.type === 'budget.tripped') {
          s.tripped = true;
          s.warned.push(...b.warn);
        }
        if (e.type === 'budget.reset') s.tripped = false;
        this.states.set(b.name, s);
      }
      if (p.next_after_seq === null || !p.items.length) break;
      after = p.next_after_seq;
    }
    this.host.hold(this.holding());
  }

  private holding(): Set<string> {
    const agents = this.host.agents();
    const held = new Set<string>();
    for (const b of this.host.budgets()) {
      if (b.action === 'warn' || !this.states.get(b.name)?.tripped) continue;
      for (const a of agentsIn(b.scope, agents)) held.add(a);
    }
    return held;
  }

  /** One look at every budget. */
  async check(): Promise<void> {
    const now = this.clock.now();
    const budgets = this.host.budgets();
    for (const [name] of this.states) {
      if (!budgets.some((b) => b.name === name)) this.states.delete(name);
    }
    const toStop: string[] = [];
    for (const b of budgets) {
      let spent: number;
      try {
        spent = await this.host.spent(b, windowStart(b.window, now));
      } catch (e) {
        this.host.log(`budgets: ${b.name}: ${errorMessage(e)}`);
        continue;
      }
      this.spentNow.set(b.name, spent);
      const step = stepBudget(b, this.states.get(b.name), spent, now);
      this.states.set(b.name, step.next);
      for (const c of step.changes) {
        await this.announce(b, c, spent, step.next.windowStart);
        if (c.kind === 'tripped' && b.action === 'stop') {
          toStop.push(...agentsIn(b.scope, this.host.agents()));
        }
      }
    }
    this.host.hold(this.holding());
    if (toStop.length) {
      await this.host
        .stop([...new Set(toStop)])
        .catch((e: unknown) => this.host.log(`budgets: stopping sessions: ${errorMessage(e)}`));
    }
  }

  private async announce(b: Budget, c: BudgetChange, spent: number, start: number): Promise<void> {
    const unit = b.usd !== undefined ? 'usd' : 'tokens';
    const fmt = (n: number) => (unit === 'usd' ? `$${n.toFixed(2)}` : `${Math.round(n)} tokens`);
    const amount = amountOf(b);
    const what =
      c.kind === 'warned'
        ? `budget ${b.name} (${b.scope}, ${b.window}) at ${c.threshold}%: ${fmt(spent)} of ${fmt(amount)}`
        : c.kind === 'tripped'
          ? `budget ${b.name} (${b.scope}, ${b.window}) tripped: ${fmt(spent)} of ${fmt(amount)}; ${
              b.action === 'warn'
                ? 'nothing is held back (action warn)'
                : `its agents are ${b.action === 'stop' ? 'stopped and ' : ''}held until the window rolls or the amount is raised`
            }`
          : `budget ${b.name} reset (${c.why === 'window' ? 'a new window' : 'the amount was raised'})`;
    await this.host.events.record({
      type: `budget.${c.kind}`,
      actor: 'budgets',
      subject: b.name,
      payload: {
        budget: b.name,
        scope: b.scope,
        window: b.window,
        window_start: start,
        unit,
        amount,
        spent,
        action: b.action,
        ...(c.kind === 'warned' ? { threshold: c.threshold } : {}),
        ...(c.kind === 'reset' ? { why: c.why } : {}),
      },
      message: what,
    });
    this.host.log(what);
  }

  /** Every budget with its spend as of the last check. */
  view(): BudgetView[] {
    const now = this.clock.now();
    const agents = this.host.agents();
    return this.host.budgets().map((b) => {
      const s = this.states.get(b.name);
      const spent = this.spentNow.get(b.name) ?? 0;
      const amount = amountOf(b);
      const tripped = s?.tripped ?? false;
      return {
        name: b.name,
        scope: b.scope,
        window: b.window,
        unit: b.usd !== undefined ? 'usd' : 'tokens',
        amount,
        spent,
        remaining: Math.max(0, amount - spent),
        window_start: new Date(windowStart(b.window, now)).toISOString(),
        window_end: new Date(windowEnd(b.window, now)).toISOString(),
        warned: s?.warned ?? [],
        tripped,
        action: b.action,
        holding: tripped && b.action !== 'warn' ? agentsIn(b.scope, agents) : [],
      };
    });
  }
}
