/** What the API routes need from the server that hosts them. */
import type { CityOps, KeyRing, Principal } from '../city/index.js';
import type { Controller, CitySpec } from '../controller/index.js';
import type { FormulaFile } from '../formula/index.js';
import type { Mail, Message } from '../mail/index.js';
import type { OrderScheduler } from '../orders/index.js';
import type { Refinery } from '../refinery/index.js';
import type { Provider } from '../runtime/index.js';
import type { RunService } from './runs.js';
import type { CityMetrics } from './metrics.js';
import type { AlertRule, AlertWatch, BudgetView } from '../alerts/index.js';
import type { Patrol } from '../patrol/index.js';
import type { Price, UsageRecord, UsageRecords } from '../costs/index.js';

/** Dashboard login links (the dashboard module makes them). */
export interface DashboardLinks {
  /**
   * A one-time link that logs a browser into the dashboard as `principal`
   * with `role`; throws GcError('unavailable') when the server has no TCP
   * listener to serve it on.
   */
  link(
    principal: Principal,
    role: 'viewer' | 'operator',
    hours: number,
  ): { url: string; role: string; expires_at: string; session_hours: number };
}

export interface ApiHost {
  readonly root: string;
  readonly ops: CityOps;
  readonly keys: KeyRing;
  readonly controller: Controller;
  readonly provider: Provider;
  readonly mail: Mail;
  readonly runs: RunService;
  readonly refinery: Refinery;
  readonly spec: CitySpec;
  readonly suspended: boolean;
  readonly state: string;
  readonly startedAt: number;
  /** How long an SSE reader may take nothing before it is cut off (default SSE_STALL_MS). */
  readonly sseStallMs?: number | undefined;
  /** Spend one of an agent key's creates (beads, mail); RateLimitedError over its quota. */
  admitCreate(principal: Principal): void;
  /** city.toml as loaded, secrets redacted. */
  redactedConfig(): unknown;
  /** After a send: nudge the recipient's live sessions (when asked) and push to its webhook. */
  delivered(message: Message, notify: boolean): Promise<{ notified: string[]; pushed: boolean }>;
  /** [beads] hold_overlapping: claim-next holds back beads overlapping work in flight. */
  readonly holdOverlapping: 'prefer' | 'strict' | 'off';
  /** The city's formulas as its packs and folder hold them now (formula/discover.ts). */
  formulaFiles(): FormulaFile[];
  /** The agent's default_sling_formula in city.toml as loaded now, if it has one. */
  defaultSlingFormula(agent: string): string | undefined;
  /** The leader's alert rules at work. */
  readonly alerts: AlertWatch;
  /** The leader's health patrol. */
  readonly patrol: Patrol;
  /** Usage records (gc costs). */
  readonly usage: UsageRecords;
  /** Add usage records (counted in /metrics); resolves with how many were new. */
  recordUsage(records: readonly UsageRecord[]): Promise<number>;
  /** The price table: built-in, with city.toml's [costs.prices] over it. */
  prices(): Record<string, Price>;
  /** The budgets as of their last check. */
  readonly budgets: { view(): BudgetView[] };
  /** The alert rules of city.toml as loaded now (or the defaults). */
  alertRules(): AlertRule[];
  /** The dashboard's login links. */
  readonly dashboard: DashboardLinks;
  /** The figures GET /metrics serves. */
  readonly metrics: CityMetrics;
  /** The city's orders (they act on the leader only). */
  readonly orders: OrderScheduler;
  /** A convoy was made or grew: look at its waves now. */
  convoysChanged(): void;
  reload(): Promise<{ ok: boolean; error?: string }>;
  setSuspended(suspended: boolean): Promise<void>;
  /** This server among the city's servers: its id, role (leader, replica, api-only) and term. */
  readonly identity: { id: string; role: string; term: number | null };
  /** The same, with every live server of the city (null on SQLite: one server). */
  serverInfo(): Promise<{
    id: string;
    role: string;
    term: number | null;
    servers: unknown[] | null;
  }>;
  /** Graceful stop. Never rejects: failures are logged and it ends stopped. */
  stop(reason?: string): Promise<void>;
}
