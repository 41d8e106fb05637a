/**
 * CityClient: the one way code outside the city server touches a city.
 * Implemented in-process by LocalCity (holding the city lock) and, with the
 * API, over HTTP by RemoteCity. Every method acts as the client's `actor`;
 * every state change is recorded as an event.
 */
import type { ClaimRequest, UnclaimRequest } from '../city/index.js';
import type {
  ConvoyCloseResult,
  ConvoyCreate,
  ConvoyDeleteResult,
  ConvoyStatus,
  ConvoySummary,
  FormulaSlingInput,
  FormulaSlingResult,
  HookResult,
  PatrolResult,
  SlingResult,
  StrandedConvoy,
} from '../dispatch/index.js';
import type { EventListQuery, EventPage, GcEvent, WatchOptions } from '../events/index.js';
import type { MailCount, MailPage, Message, SendInput } from '../mail/index.js';
import type { MergeRequest, MqListQuery, RigStats, SubmitRequest } from '../refinery/index.js';
import type { OrderRun, OrderState, OrderView } from '../orders/index.js';
import type { AlertInstance, AlertRule, BudgetView } from '../alerts/index.js';
import type { UsageBy, UsageRecord, UsageTotal } from '../costs/index.js';
import type { PatrolReport } from '../patrol/index.js';
import type {
  Bead,
  BeadCounts,
  CloseResult,
  CreateBeadInput,
  Dependency,
  ListQuery,
  Page,
  ReadyQuery,
  UpdateBeadInput,
} from '../store/index.js';

export type { ClaimRequest, ConvoyCreate, UnclaimRequest };

/** A sent message and what happened next: sessions nudged, webhook push queued. */
export type SentMessage = Message & {
  notified: string[];
  pushed: boolean;
  /** Said when the recipient names no agent, pool, session or registered agent. */
  warnings?: string[];
};

export interface OrderList {
  orders: OrderView[];
  /** The order files (and [orders] entries) that could not be read. */
  issues: string[];
}

export interface CostsQuery {
  by?: UsageBy;
  /** `24h` (that long ago), an RFC 3339 time or epoch ms. */
  since?: string;
  until?: string;
  agent?: string;
  rig?: string;
}

export interface CostsView {
  by: UsageBy | null;
  since: string | null;
  until: string | null;
  totals: UsageTotal[];
  budgets: BudgetView[];
}

export interface CostInput {
  session?: string;
  agent?: string;
  rig?: string;
  bead?: string;
  provider?: string;
  model: string;
  input_tokens?: number;
  cached_input_tokens?: number;
  cache_write_tokens?: number;
  output_tokens?: number;
  cost_usd?: number;
  id?: string;
  at?: string | number;
}

export interface RecordedCost {
  added: boolean;
  record: UsageRecord;
}

export interface AlertsView {
  rules: AlertRule[];
  active: AlertInstance[];
}

export interface OrderDetail extends OrderState {
  runs: Bead[];
}

export interface MqSubmitted extends MergeRequest {
  /** False when the same branch and head were already submitted. */
  created: boolean;
  superseded: string[];
}

export interface MailSend extends SendInput {
  /** Nudge the recipient's live sessions. */
  notify?: boolean;
}

export interface MailReply {
  body: string;
  subject?: string;
  priority?: number;
  notify?: boolean;
}

/** An event a person or agent records (POST /v0/events). */
export interface EmitEvent {
  type: string;
  subject?: string;
  message?: string;
  payload?: unknown;
}

/** How to follow the event log. */
export interface FollowOptions extends WatchOptions {
  /**
   * Through a server: when the stream is lost (the server stopped or
   * restarted), wait for it and resume after the last seq seen, instead of
   * ending with an `unavailable` error. Following the files (no server)
   * never loses the stream.
   */
  reconnect?: boolean;
  /** Told, in a sentence, when the stream is lost and when it resumes. */
  onStatus?: (message: string) => void;
}

export interface SlingOptions {
  nudge?: boolean;
  /** Make the auto-convoy (default true). */
  convoy?: boolean;
  /** The auto-convoy is owned (never closed by itself). */
  owned?: boolean;
  /** false: route the bead alone, without the target's default_sling_formula. */
  formula?: boolean;
}

export type SlingBeadResult = SlingResult & {
  convoy?: string;
  /** The molecule the target's default_sling_formula poured on the bead. */
  molecule?: string;
  formula?: string;
};

/** A formula sling as callers put it (`wisp` a duration); `nudge` wakes the target's sessions. */
export interface FormulaSlingRequest extends FormulaSlingInput {
  nudge?: boolean;
}

export interface DashboardLinkInput {
  role?: 'viewer' | 'operator';
  hours?: number;
}

export interface DashboardLink {
  url: string;
  role: string;
  expires_at: string;
  session_hours: number;
}

export interface CityClient {
  /** `local` (in-process) or `remote` (HTTP). */
  readonly kind: 'local' | 'remote';
  /** Who this client acts as: session name, agent name, or the human user. */
  readonly actor: string;
  /** City root directory (local) or API address (remote). */
  readonly where: string;

  createBead(input: CreateBeadInput): Promise<Bead>;
  getBead(id: string): Promise<Bead>;
  listBeads(query: ListQuery): Promise<Page<Bead>>;
  readyBeads(query?: ReadyQuery): Promise<Page<Bead>>;
  children(parentId: string, query?: { limit?: number; cursor?: string }): Promise<Page<Bead>>;
  beadCounts(): Promise<BeadCounts>;
  updateBead(id: string, patch: UpdateBeadInput): Promise<Bead>;
  closeBead(id: string, reason?: string): Promise<CloseResult>;
  /** Claim for this client's actor. */
  claimBead(id: string, request?: ClaimRequest): Promise<Bead>;
  /** Claim the first ready bead matching the query for this client's actor; null if none. */
  /**
   * Claim the first ready bead matching the query; null when none. With
   * `waitMs` (through a server), an empty answer waits up to that long
   * (at most 30 s) for work to appear.
   */
  claimNext(query?: ReadyQuery & ClaimRequest & { waitMs?: number }): Promise<Bead | null>;
  /** The bead after; `changed` false when it was not claimed (a no-op). */
  unclaimBead(id: string, request?: UnclaimRequest): Promise<Bead & { changed: boolean }>;
  addDependency(issueId: string, dependsOnId: string, type?: string): Promise<void>;
  /** False when there was no such dependency (a no-op). */
  removeDependency(issueId: string, dependsOnId: string): Promise<boolean>;
  listDependencies(id: string, direction: 'down' | 'up'): Promise<Dependency[]>;

  /**
   * Route a bead to an agent or pool (sets gc.routed_to) in its own convoy
   * (`sling-<bead>`; not with `convoy: false`, nor for a bead that already
   * has a parent); `nudge` wakes its live sessions.
   */
  sling(target: string, beadId: string, options?: SlingOptions): Promise<SlingBeadResult>;
  /**
   * Pour a formula as a molecule (one transaction), its steps routed to
   * `target`, in a convoy over its root unless `convoy: false`. A null
   * target is `gc formula cook`: poured, nothing routed, no convoy.
   */
  slingFormula(target: string | null, request: FormulaSlingRequest): Promise<FormulaSlingResult>;
  /** This client's current work: its claims, else ready work routed to `agent` or assigned to it. */
  hook(agent?: string, limit?: number): Promise<HookResult>;

  /** Convoys: a bead of type convoy parenting work, optionally released in waves. */
  createConvoy(input: ConvoyCreate): Promise<ConvoyStatus>;
  addToConvoy(id: string, beads: string[]): Promise<ConvoyStatus>;
  listConvoys(query?: {
    all?: boolean;
    limit?: number;
    cursor?: string;
  }): Promise<Page<ConvoySummary>>;
  convoyStatus(id: string): Promise<ConvoyStatus>;
  /** Close (all its beads closed, or `force`); `land` closes an owned one. Mails owner and notify. */
  closeConvoy(
    id: string,
    options?: { reason?: string; force?: boolean; land?: boolean },
  ): Promise<ConvoyCloseResult>;
  setConvoyTarget(id: string, target: string): Promise<Bead>;
  /** Delete a convoy; its beads set free, or deleted too with `beads`. */
  deleteConvoy(
    id: string,
    options?: { beads?: boolean; force?: boolean },
  ): Promise<ConvoyDeleteResult>;
  /** Close finished convoys and release due waves now (what the patrol does every second). */
  checkConvoys(): Promise<PatrolResult>;
  strandedConvoys(): Promise<StrandedConvoy[]>;

  /** Orders (orders/<name>.toml): what the city has, their gates now, their runs. */
  listOrders(): Promise<OrderList>;
  /** Every order's gate decision now: conditions are run, nothing fires. */
  checkOrders(): Promise<OrderState[]>;
  /** One order, its decision (`check`: run its condition) and its recent runs. */
  orderStatus(name: string, check?: boolean): Promise<OrderDetail>;
  /** Run an order now, whatever its gate; refused while one of its runs is open. */
  runOrder(name: string): Promise<OrderRun>;
  /** Runs of one order (or all), newest first. */
  orderHistory(name?: string, limit?: number): Promise<Bead[]>;

  /** Alert rules, and (from a running server) the alerts pending or firing. */
  alerts(): Promise<AlertsView>;
  /** The health patrol's tiers and open findings (empty without a running server). */
  patrol(): Promise<PatrolReport>;
  /** Usage totals, grouped as asked, and the budgets (from a running server). */
  costs(q?: CostsQuery): Promise<CostsView>;
  /** Record usage (an agent's Stop hook); an agent records its own only. */
  recordCost(input: CostInput): Promise<RecordedCost>;
  /** A one-time dashboard login link (a running city with a TCP listener). */
  dashboardLink(input: DashboardLinkInput): Promise<DashboardLink>;

  /** Mail as this client's actor; `agent` reads another mailbox (humans and operators only). */
  sendMail(to: string, input: MailSend): Promise<SentMessage>;
  mailInbox(agent?: string, limit?: number): Promise<Page<Message>>;
  mailCheck(agent?: string, page?: MailPage): Promise<Page<Message>>;
  mailAll(agent?: string, page?: MailPage): Promise<Page<Message>>;
  mailCount(agent?: string): Promise<MailCount>;
  getMail(id: string): Promise<Message>;
  readMail(id: string): Promise<Message>;
  markMailRead(id: string): Promise<Message>;
  markMailUnread(id: string): Promise<Message>;
  replyMail(id: string, input: MailReply): Promise<SentMessage>;
  mailThread(id: string): Promise<Message[]>;
  archiveMail(id: string): Promise<Message>;
  deleteMail(id: string): Promise<void>;

  /** Merge queue: submit as this client's actor. */
  mqSubmit(input: SubmitRequest): Promise<MqSubmitted>;
  mqList(query?: MqListQuery): Promise<Page<MergeRequest>>;
  /** One request; with `waitMs` (through a server), held while it is in the queue, up to 30 s. */
  mqGet(id: string, options?: { waitMs?: number }): Promise<MergeRequest>;
  mqReject(id: string, reason?: string): Promise<MergeRequest>;
  mqRetry(id: string): Promise<MergeRequest>;
  mqStats(rig?: string): Promise<RigStats[]>;

  listEvents(query?: EventListQuery): Promise<EventPage>;
  /** Record an event as this client's actor (a type of its own, not gc's). */
  emitEvent(input: EmitEvent): Promise<GcEvent>;
  latestEventSeq(): Promise<number>;
  /** Live events after a seq (see FollowOptions for a server that goes away). */
  watchEvents(afterSeq: number, options?: FollowOptions): AsyncIterable<GcEvent>;

  /** Release the lock, files and connections. */
  close(): Promise<void>;
}

/** The acting identity from the environment (sessions set GC_SESSION_NAME / GC_AGENT). */
export function actorFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return env.GC_SESSION_NAME || env.GC_AGENT || env.BD_ACTOR || env.USER || 'human';
}

/**
 * Whether the actor was chosen (a flag, a session's name, BD_ACTOR) or is
 * only the login name guessed for a person. A guessed actor is sent as a
 * default the server may replace: a registered agent's key acts as that
 * agent without --actor on every command.
 */
export function actorIsChosen(
  flag: string | undefined,
  env: NodeJS.ProcessEnv = process.env,
): boolean {
  return Boolean(flag || env.GC_SESSION_NAME || env.GC_AGENT || env.BD_ACTOR);
}
