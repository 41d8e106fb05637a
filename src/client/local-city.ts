/**
 * LocalCity: a CityClient that opens the city's store and event log in this
 * process, under the city lock. Operations go through CityOps, exactly as
 * the city server runs them.
 */
import path from 'node:path';
import { GcError } from '../core/index.js';
import type { LoadedConfig } from '../config/index.js';
import { CityOps, KeyRing, openCityState, type CityState } from '../city/index.js';
import { citySpec, unknownRecipientWarning } from '../controller/index.js';
import {
  addToConvoy,
  closeConvoy,
  convoyNotifier,
  convoyOptions,
  convoyStatus,
  createConvoy,
  deleteConvoy,
  hook,
  formulaRequest,
  listConvoys,
  patrolConvoys,
  setConvoyTarget,
  strandedConvoys,
  slingWork,
  slingFormula,
  type ConvoyCloseResult,
  type ConvoyCreate,
  type ConvoyDeleteResult,
  type FormulaSlingResult,
  type ConvoyStatus,
  type ConvoySummary,
  type HookResult,
  type PatrolResult,
  type StrandedConvoy,
} from '../dispatch/index.js';
import { discoverFormulas } from '../formula/index.js';
import { alertRules } from '../alerts/index.js';
import type { PatrolReport } from '../patrol/index.js';
import { SqlUsage, SqliteUsage, usageTime } from '../costs/index.js';
import {
  OrderScheduler,
  agentNames,
  discoverOrders,
  type OrderRun,
  type OrderState,
} from '../orders/index.js';
import {
  checkEmittedType,
  type EventListQuery,
  type EventPage,
  type GcEvent,
  type WatchOptions,
} from '../events/index.js';
import { openMail, type Mail, type MailCount, type MailPage, type Message } from '../mail/index.js';
import {
  MergeQueue,
  Refinery,
  cityMergeHooks,
  type MergeRequest,
  type MqListQuery,
  type RigStats,
  type SubmitRequest,
} from '../refinery/index.js';
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
import {
  actorFromEnv,
  type ClaimRequest,
  type CityClient,
  type EmitEvent,
  type FormulaSlingRequest,
  type SlingBeadResult,
  type SlingOptions,
  type MailReply,
  type MqSubmitted,
  type MailSend,
  type AlertsView,
  type CostsQuery,
  type CostsView,
  type RecordedCost,
  type OrderDetail,
  type OrderList,
  type SentMessage,
  type UnclaimRequest,
  type DashboardLink,
} from './city-client.js';

export interface LocalCityOptions {
  /** City root (directory holding city.toml). */
  root: string;
  actor?: string;
  env?: NodeJS.ProcessEnv;
  /** Open without the lock, for reading and following only. */
  readonly?: boolean;
  /** Lock wait for another CLI holder, ms. */
  lockWaitMs?: number;
  command?: string;
}

export class LocalCity implements CityClient {
  readonly kind = 'local' as const;
  readonly where: string;
  readonly loaded: LoadedConfig;
  private readonly ops: CityOps;
  private mailbox: Mail | undefined;
  private mq: Refinery | undefined;
  private scheduler: OrderScheduler | undefined;

  private constructor(
    readonly actor: string,
    private readonly state: CityState,
  ) {
    this.where = state.loaded.root;
    this.loaded = state.loaded;
    this.ops = new CityOps(state.store, state.events);
  }

  private get mail(): Mail {
    this.mailbox ??= openMail({
      provider: this.loaded.config.mail.provider,
      maxUnread: this.loaded.config.mail.max_unread,
      maxUnreadPerSender: this.loaded.config.mail.max_unread_per_sender,
      root: this.where,
      store: this.state.store,
      events: this.state.events,
      // Each change's event commits with it.
      recorder: this.ops.recorder(),
    });
    return this.mailbox;
  }

  /** The merge queue without its engines: requests wait until the city server runs. */
  private get refinery(): Refinery {
    this.mq ??= new Refinery({
      root: this.where,
      gcDir: this.state.gcDir,
      rigs: this.loaded.config.rigs,
      queue: MergeQueue.forCity(this.state.gcDir, { db: this.state.db }),
      hooks: cityMergeHooks({
        events: this.state.events,
        mail: this.mail,
        createBead: (actor, input) => this.ops.createBead(actor, input),
        closeBead: (actor, id, reason) => this.ops.closeBead(actor, id, reason),
        getBead: (id) => this.state.store.get(id),
        setMetadata: (actor, id, key, value) => this.ops.setMetadata(actor, id, key, value),
      }),
    });
    return this.mq;
  }

  async mqSubmit(input: SubmitRequest): Promise<MqSubmitted> {
    const r = await this.refinery.submit(this.actor, input);
    return { ...r.request, created: r.created, superseded: r.superseded };
  }

  mqList(query: MqListQuery = {}): Promise<Page<MergeRequest>> {
    return Promise.resolve().then(() => this.refinery.list(query));
  }

  // No server, nothing moves the queue while we wait: options.waitMs has no effect.
  mqGet(id: string, _options: { waitMs?: number } = {}): Promise<MergeRequest> {
    return Promise.resolve().then(() => this.refinery.queue.get(id));
  }

  mqReject(id: string, reason?: string): Promise<MergeRequest> {
    return this.refinery.reject(this.actor, id, reason ?? '');
  }

  mqRetry(id: string): Promise<MergeRequest> {
    return this.refinery.retry(this.actor, id);
  }

  mqStats(rig?: string): Promise<RigStats[]> {
    return Promise.resolve().then(() => this.refinery.stats(rig));
  }

  // With no server running there are no sessions to nudge and no webhook
  // pushes: the message waits in the inbox.
  async sendMail(to: string, input: MailSend): Promise<SentMessage> {
    const { notify: _notify, ...rest } = input;
    const m = await this.mail.send(this.actor, to, rest);
    const keys = await KeyRing.open(this.state.db ?? this.state.gcDir);
    let warning: string | undefined;
    try {
      warning = unknownRecipientWarning(citySpec(this.loaded), keys, to);
    } finally {
      await keys.close();
    }
    return { ...m, notified: [], pushed: false, ...(warning ? { warnings: [warning] } : {}) };
  }

  mailInbox(agent?: string, limit?: number): Promise<Page<Message>> {
    return this.mail.inbox(agent ?? this.actor, limit !== undefined ? { limit } : {});
  }

  mailCheck(agent?: string, page: MailPage = {}): Promise<Page<Message>> {
    return this.mail.check(agent ?? this.actor, page);
  }

  mailAll(agent?: string, page: MailPage = {}): Promise<Page<Message>> {
    return this.mail.all(agent ?? this.actor, page);
  }

  mailCount(agent?: string): Promise<MailCount> {
    return this.mail.count(agent ?? this.actor);
  }

  getMail(id: string): Promise<Message> {
    return this.mail.get(id);
  }

  readMail(id: string): Promise<Message> {
    return this.mail.read(id);
  }

  markMailRead(id: string): Promise<Message> {
    return this.mail.markRead(id);
  }

  markMailUnread(id: string): Promise<Message> {
    return this.mail.markUnread(id);
  }

  async replyMail(id: string, input: MailReply): Promise<SentMessage> {
    const { notify: _notify, ...rest } = input;
    return { ...(await this.mail.reply(id, this.actor, rest)), notified: [], pushed: false };
  }

  mailThread(id: string): Promise<Message[]> {
    return this.mail.thread(id);
  }

  archiveMail(id: string): Promise<Message> {
    return this.mail.archive(id);
  }

  deleteMail(id: string): Promise<void> {
    return this.mail.delete(id);
  }

  static async open(options: LocalCityOptions): Promise<LocalCity> {
    const state = await openCityState({
      root: options.root,
      role: 'cli',
      ...(options.env ? { env: options.env } : {}),
      ...(options.readonly ? { readonly: true } : {}),
      ...(options.lockWaitMs !== undefined ? { lockWaitMs: options.lockWaitMs } : {}),
      ...(options.command ? { command: options.command } : {}),
    });
    const city = new LocalCity(options.actor ?? actorFromEnv(options.env ?? process.env), state);
    if (!options.readonly) {
      try {
        await city.ops.recover();
      } catch (e) {
        await state.close();
        throw e;
      }
    }
    return city;
  }

  createBead(input: CreateBeadInput): Promise<Bead> {
    return this.ops.createBead(this.actor, input);
  }

  getBead(id: string): Promise<Bead> {
    return this.state.store.get(id);
  }

  listBeads(query: ListQuery): Promise<Page<Bead>> {
    return this.state.store.list(query);
  }

  readyBeads(query: ReadyQuery = {}): Promise<Page<Bead>> {
    return this.state.store.ready(query);
  }

  children(parentId: string, query: { limit?: number; cursor?: string } = {}): Promise<Page<Bead>> {
    return this.state.store.children(parentId, query);
  }

  beadCounts(): Promise<BeadCounts> {
    return this.state.store.counts();
  }

  updateBead(id: string, patch: UpdateBeadInput): Promise<Bead> {
    return this.ops.updateBead(this.actor, id, patch);
  }

  closeBead(id: string, reason?: string): Promise<CloseResult> {
    return this.ops.closeBead(this.actor, id, reason);
  }

  claimBead(id: string, request: ClaimRequest = {}): Promise<Bead> {
    return this.ops.claimBead(this.actor, id, request);
  }

  claimNext(query: ReadyQuery & ClaimRequest & { waitMs?: number } = {}): Promise<Bead | null> {
    const { waitMs: _wait, ...rest } = query;
    return this.ops.claimNext(this.actor, rest);
  }

  unclaimBead(id: string, request: UnclaimRequest = {}): Promise<Bead & { changed: boolean }> {
    return this.ops.unclaimBead(this.actor, id, request);
  }

  addDependency(issueId: string, dependsOnId: string, type = 'blocks'): Promise<void> {
    return this.ops.addDependency(this.actor, issueId, dependsOnId, type);
  }

  removeDependency(issueId: string, dependsOnId: string): Promise<boolean> {
    return this.ops.removeDependency(this.actor, issueId, dependsOnId);
  }

  listDependencies(id: string, direction: 'down' | 'up'): Promise<Dependency[]> {
    return this.state.store.listDependencies(id, direction);
  }

  async sling(
    target: string,
    beadId: string,
    options: SlingOptions = {},
  ): Promise<SlingBeadResult> {
    // Without a running server there is no session to nudge; the controller
    // sees the route when it starts.
    return slingWork(
      this.ops,
      this.actor,
      target,
      beadId,
      this.loaded.config.agent.map((a) => a.name),
      () => discoverFormulas(this.loaded),
      {
        ...(options.convoy !== undefined ? { convoy: options.convoy } : {}),
        ...(options.owned !== undefined ? { owned: options.owned } : {}),
        ...(options.formula !== undefined ? { formula: options.formula } : {}),
        defaultFormula: this.loaded.config.agent.find((a) => a.name === target)
          ?.default_sling_formula,
      },
    );
  }

  slingFormula(target: string | null, request: FormulaSlingRequest): Promise<FormulaSlingResult> {
    return slingFormula(
      this.ops,
      this.actor,
      target,
      discoverFormulas(this.loaded),
      this.loaded.config.agent.map((a) => a.name),
      formulaRequest(request),
    );
  }

  hook(agent?: string, limit?: number): Promise<HookResult> {
    return hook(this.ops, this.actor, agent, limit);
  }

  createConvoy(input: ConvoyCreate): Promise<ConvoyStatus> {
    return createConvoy(this.ops, this.actor, input.title, input.beads, convoyOptions(input));
  }

  addToConvoy(id: string, beads: string[]): Promise<ConvoyStatus> {
    return addToConvoy(this.ops, this.actor, id, beads);
  }

  listConvoys(
    query: { all?: boolean; limit?: number; cursor?: string } = {},
  ): Promise<Page<ConvoySummary>> {
    return listConvoys(this.ops, query);
  }

  closeConvoy(
    id: string,
    options: { reason?: string; force?: boolean; land?: boolean } = {},
  ): Promise<ConvoyCloseResult> {
    return closeConvoy(this.ops, this.actor, id, { ...options, notify: this.convoyMail() });
  }

  setConvoyTarget(id: string, target: string): Promise<Bead> {
    return setConvoyTarget(this.ops, this.actor, id, target);
  }

  deleteConvoy(
    id: string,
    options: { beads?: boolean; force?: boolean } = {},
  ): Promise<ConvoyDeleteResult> {
    return deleteConvoy(this.ops, this.actor, id, options);
  }

  checkConvoys(): Promise<PatrolResult> {
    return patrolConvoys(
      this.ops,
      (bead) => this.refinery.queue.hasPending(bead),
      Date.now(),
      undefined,
      this.convoyMail(),
    );
  }

  strandedConvoys(): Promise<StrandedConvoy[]> {
    return strandedConvoys(this.ops);
  }

  /** Orders in this process (no server runs): a run is waited for before it answers. */
  private get orders(): OrderScheduler {
    this.scheduler ??= new OrderScheduler({
      ops: this.ops,
      root: this.where,
      orders: () => discoverOrders(this.loaded),
      formulas: () => discoverFormulas(this.loaded),
      agents: () => agentNames(this.loaded),
      log: (line) => process.stderr.write(`gc: ${line}\n`),
    });
    return this.scheduler;
  }

  /** No server, no watch: the rules alone (nothing is pending or firing). */
  alerts(): Promise<AlertsView> {
    return Promise.resolve({ rules: alertRules(this.loaded.config), active: [] });
  }

  /** No server: the totals from the records; budgets are watched by a running city's leader. */
  async costs(q: CostsQuery = {}): Promise<CostsView> {
    const now = Date.now();
    const since = usageTime(q.since, 'since', now);
    const until = usageTime(q.until, 'until', now);
    const usage = this.state.db
      ? new SqlUsage(this.state.db)
      : new SqliteUsage(path.join(this.state.gcDir, 'usage.db'));
    try {
      const totals = await usage.totals({
        ...(q.by ? { by: q.by } : {}),
        ...(since !== undefined ? { since } : {}),
        ...(until !== undefined ? { until } : {}),
        ...(q.agent ? { agent: q.agent } : {}),
        ...(q.rig ? { rig: q.rig } : {}),
      });
      return {
        by: q.by ?? null,
        since: since !== undefined ? new Date(since).toISOString() : null,
        until: until !== undefined ? new Date(until).toISOString() : null,
        totals,
        budgets: [],
      };
    } finally {
      await usage.close();
    }
  }

  recordCost(): Promise<RecordedCost> {
    return Promise.reject(
      new GcError('unavailable', 'usage is recorded by a running city', {
        fix: 'start the city (gc start); agents record from their sessions',
      }),
    );
  }

  dashboardLink(): Promise<DashboardLink> {
    return Promise.reject(
      new GcError('unavailable', 'the dashboard is served by a running city', {
        fix: 'start the city (gc start) with [api] port set, then run gc dashboard',
      }),
    );
  }

  /** No server, no patrol. */
  patrol(): Promise<PatrolReport> {
    const enabled = this.loaded.config.patrol.enabled;
    return Promise.resolve({ enabled, last: undefined, ms_p50: 0, tiers: [], findings: [] });
  }

  listOrders(): Promise<OrderList> {
    return Promise.resolve(this.orders.list());
  }

  checkOrders(): Promise<OrderState[]> {
    return this.orders.check();
  }

  async orderStatus(name: string, check = false): Promise<OrderDetail> {
    const st = await this.orders.status(name, check);
    return { ...st, runs: await this.orders.history(name, 10) };
  }

  async runOrder(name: string): Promise<OrderRun> {
    const r = await this.orders.run(name, this.actor);
    await this.orders.settled(r.run.id);
    return { ...r, run: await this.state.store.get(r.run.id) };
  }

  orderHistory(name?: string, limit?: number): Promise<Bead[]> {
    return this.orders.history(name, limit);
  }

  private convoyMail() {
    return convoyNotifier(this.mail, (line) => process.stderr.write(`gc: ${line}\n`));
  }

  convoyStatus(id: string): Promise<ConvoyStatus> {
    return convoyStatus(this.ops, id, (bead) => this.refinery.queue.hasPending(bead));
  }

  emitEvent(input: EmitEvent): Promise<GcEvent> {
    return this.ops.events.record({
      ...input,
      type: checkEmittedType(input.type),
      actor: this.actor,
    });
  }

  listEvents(query: EventListQuery = {}): Promise<EventPage> {
    return this.state.events.list(query);
  }

  latestEventSeq(): Promise<number> {
    return this.state.events.latestSeq();
  }

  watchEvents(afterSeq: number, options: WatchOptions = {}): AsyncIterable<GcEvent> {
    return this.state.events.watch(afterSeq, options);
  }

  async close(): Promise<void> {
    await this.mq?.queue.close();
    this.ops.close();
    return this.state.close();
  }
}
