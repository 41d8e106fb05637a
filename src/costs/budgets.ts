/**
 * Budgets, pure: the window a moment falls in (UTC calendar day, ISO week
 * from Monday, calendar month), and each budget's step as its spend grows:
 * a warning once per threshold per window (the highest one crossed), a
 * trip once per window when the spend reaches the amount, and a reset
 * when the window rolls over or the amount is raised above the spend.
 */

export type BudgetWindow = 'day' | 'week' | 'month';
export type BudgetAction = 'warn' | 'suspend' | 'stop';

export interface Budget {
  name: string;
  /** `city`, `rig:NAME` or `agent:NAME` (an agent template). */
  scope: string;
  window: BudgetWindow;
  /** Dollars, or tokens (exactly one is set). */
  usd?: number;
  tokens?: number;
  /** Percentages of the amount that warn, ascending. */
  warn: number[];
  action: BudgetAction;
}

export interface BudgetState {
  /** Start of the window this state is for (epoch ms). */
  windowStart: number;
  /** The thresholds warned about in this window. */
  warned: number[];
  tripped: boolean;
}

export type BudgetChange =
  | { kind: 'warned'; threshold: number }
  | { kind: 'tripped' }
  | { kind: 'reset'; why: 'window' | 'raised' };

const DAY = 86_400_000;

export function windowStart(w: BudgetWindow, now: number): number {
  const d = new Date(now);
  const day = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  if (w === 'day') return day;
  if (w === 'week') return day - ((d.getUTCDay() + 6) % 7) * DAY;
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

export function windowEnd(w: BudgetWindow, now: number): number {
  const start = windowStart(w, now);
  if (w === 'day') return start + DAY;
  if (w === 'week') return start + 7 * DAY;
  const d = new Date(start);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

export const amountOf = (b: Budget): number => b.usd ?? b.tokens ?? 0;

export function stepBudget(
  b: Budget,
  prev: BudgetState | undefined,
  spent: number,
  now: number,
): { next: BudgetState; changes: BudgetChange[] } {
  const start = windowStart(b.window, now);
  const changes: BudgetChange[] = [];
  let s = prev;
  if (s && s.windowStart !== start) {
    if (s.tripped) changes.push({ kind: 'reset', why: 'window' });
    s = undefined;
  }
  const next: BudgetState = s
    ? { ...s, warned: [...s.warned] }
    : { windowStart: start, warned: [], tripped: false };
  const amount = amountOf(b);
  const pct = amount > 0 ? (spent / amount) * 100 : Infinity;
  const crossed = b.warn.filter((t) => pct >= t && !next.warned.includes(t));
  if (crossed.length && !(spent >= amount && !next.tripped)) {
    changes.push({ kind: 'warned', threshold: Math.max(...crossed) });
  }
  next.warned.push(...crossed);
  if (spent >= amount && !next.tripped) {
    next.tripped = true;
    changes.push({ kind: 'tripped' });
  } else if (next.tripped && spent < amount) {
    next.tripped = false;
    changes.push({ kind: 'reset', why: 'raised' });
  }
  return { next, changes };
}

/** The agents a scope covers, of the city's agents (name and rig). */
export function agentsIn(
  scope: string,
  agents: readonly { name: string; rig: string | undefined }[],
): string[] {
  if (scope === 'city') return agents.map((a) => a.name);
  const [kind, name] = [scope.slice(0, scope.indexOf(':')), scope.slice(scope.indexOf(':') + 1)];
  if (kind === 'rig') return agents.filter((a) => a.rig === name).map((a) => a.name);
  if (kind === 'agent') return agents.filter((a) => a.name === name).map((a) => a.name);
  return [];
}
