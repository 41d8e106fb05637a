/**
 * The parts of a city server, wired together: the session provider, the
 * key ring, the bead operations, the controller, mail, the merge queue
 * (refinery), convoys, orders and webhooks. Every server of a city builds all of
 * them; only the leader starts the ones that act (see leadership.ts).
 */
import path from 'node:path';
import { CityOps, KeyRing, type CityState } from '../city/index.js';
import { Controller, citySpec, type CitySpec } from '../controller/index.js';
import { ConvoyPatrol, convoyNotifier } from '../dispatch/index.js';
import { MergeQueue, Refinery, SessionWorktrees, cityMergeHooks } from '../refinery/index.js';
import { WebhookDelivery, openMail, recordWebhookResults, type Mail } from '../mail/index.js';
import { openProvider, type Provider } from '../runtime/index.js';
import { CityMetrics, RunService, openCityRecords, type CityRecords } from '../api/index.js';
import { OrderScheduler, agentNames, discoverOrders, type Discovered } from '../orders/index.js';
import { discoverFormulas } from '../formula/index.js';
import { parseDuration } from '../core/index.js';
import { formatIssue, type LoadedConfig } from '../config/index.js';
import { AlertWatch, alertRules } from '../alerts/index.js';
import { deliverMail } from './delivery.js';
import { fencedProvider } from './fenced-provider.js';
import { serverHost } from './host.js';
import { writeShims } from './shims.js';
import { cityPatrol } from './patrol-host.js';
import { CostWork } from './costs-host.js';
import type { Patrol } from '../patrol/index.js';

export interface ComposeOptions {
  sessionProvider?: string;
  stopGraceMs?: number;
  webhookCa?: string;
  cliDir?: string;
  /** The address sessions reach the API at (GC_API). */
  api: string;
  /** This server's id (names its pending requests). */
  serverId: string;
  /** A server not seen for this long is gone. */
  staleMs: number;
  /** city.toml as last loaded (reloads included); default: the state's. */
  config?: () => LoadedConfig;
  /** Whether only the leader may act (several servers share the city). */
  mayAct?: () => boolean;
  log: (line: string) => void;
}

export interface CityParts {
  root: string;
  spec: CitySpec;
  provider: Provider;
  keys: KeyRing;
  records: CityRecords;
  ops: CityOps;
  controller: Controller;
  mail: Mail;
  queue: MergeQueue;
  refinery: Refinery;
  convoys: ConvoyPatrol;
  orders: OrderScheduler;
  /** The leader's alert rules at work (gc alerts). */
  alerts: AlertWatch;
  /** The leader's health patrol (gc patrol). */
  patrol: Patrol;
  /** Usage ingestion and budgets (gc costs). */
  costs: CostWork;
  /** GET /metrics: counts the log's events from the server's start on. */
  metrics: CityMetrics;
  worktrees: SessionWorktrees;
  webhooks: WebhookDelivery;
  runs: RunService;
  sessionEnv: Record<string, string>;
  /** Close what was opened here (not the city state). */
  close(log: (line: string) => void): Promise<void>;
}

/** Build every part of a server over an opened city state; closes what it opened when it fails. */
export async function composeCity(state: CityState, o: ComposeOptions): Promise<CityParts> {
  const log = o.log;
  let provider: Provider | undefined;
  let keys: KeyRing | undefined;
  let records: CityRecords | undefined;
  let runs: RunService | undefined;
  try {
    const root = state.loaded.root;
    keys = await KeyRing.open(state.db ?? state.gcDir);
    await keys.ensureAdminKey(root);
    const keyRing = keys;
    provider = openProvider(o.sessionProvider ?? state.loaded.config.session.provider, {
      cityRoot: root,
      ...(o.stopGraceMs !== undefined ? { stopGraceMs: o.stopGraceMs } : {}),
      k8s: state.loaded.config.session.k8s,
    });
    const spec = citySpec(state.loaded);
    const binDir = path.join(state.gcDir, 'bin');
    await writeShims(binDir, o.cliDir);
    // Writes poke the controller, which needs the ops: tie the knot by reference.
    const ref: {
      controller?: Controller;
      refinery?: Refinery;
      convoys?: ConvoyPatrol;
      metrics?: CityMetrics;
    } = {};
    records = await openCityRecords(state, {
      serverId: o.serverId,
      staleMs: o.staleMs,
      host: serverHost(),
    });
    const sessionEnv = {
      GC_API: o.api,
      PATH: `${binDir}${path.delimiter}${process.env.PATH ?? ''}`,
    };
    const tokens = keyRing.sessionTokens();
    // The leader's work starts and stops sessions only while it leads.
    const acting = o.mayAct ? fencedProvider(provider, o.mayAct) : provider;
    runs = await RunService.open({
      records: records.runs,
      provider: acting,
      events: state.events,
      spec: () => ref.controller?.currentSpec ?? spec,
      maxRuns: state.loaded.config.api.max_runs,
      sessionEnv,
      tokens,
      log,
      ...(o.mayAct ? { mayAct: o.mayAct } : {}),
    });
    const runService = runs;
    const ops = new CityOps(state.store, state.events, () => ref.controller?.nudge(), log, false);
    const queue = MergeQueue.forCity(state.gcDir, { db: state.db });
    const worktrees = new SessionWorktrees(root, state.gcDir, queue);
    const controller = new Controller({
      facts: records.facts,
      provider: acting,
      ops,
      spec,
      ticked: (r) => ref.metrics?.observeTick(r.ms),
      log,
      sessionEnv,
      tokens,
      foreign: runService.isRunSession,
      ...(o.mayAct ? { mayAct: o.mayAct } : {}),
      workspaces: {
        prepare: async (session, rigName) => {
          const rig = ref.refinery?.rigConfig(rigName);
          return rig?.worktrees ? worktrees.prepare(rig, session) : undefined;
        },
        release: (session, rigName, pool) => {
          const rig = ref.refinery?.rigConfig(rigName);
          if (!pool || !rig?.worktrees) return;
          worktrees.pruneLater(rig, session, log);
        },
      },
    });
    ref.controller = controller;
    const mailCfg = state.loaded.config.mail;
    const mail = openMail({
      provider: mailCfg.provider,
      maxUnread: mailCfg.max_unread,
      maxUnreadPerSender: mailCfg.max_unread_per_sender,
      root,
      store: state.store,
      events: state.events,
      // Each change's event commits with it.
      recorder: ops.recorder(),
    });
    const refinery = new Refinery({
      root,
      gcDir: state.gcDir,
      rigs: state.loaded.config.rigs,
      queue,
      hooks: cityMergeHooks({
        events: state.events,
        mail,
        createBead: (actor, input) => ops.createBead(actor, input),
        // A landed bead may let a convoy's next wave go.
        closeBead: (actor, id, reason) =>
          ops.closeBead(actor, id, reason).finally(() => ref.convoys?.kick()),
        getBead: (id) => state.store.get(id),
        setMetadata: (actor, id, key, value) => ops.setMetadata(actor, id, key, value),
      }),
      ...(o.mayAct ? { mayAct: o.mayAct } : {}),
      log,
    });
    ref.refinery = refinery;
    const convoys = new ConvoyPatrol(
      ops,
      (bead) => queue.hasPending(bead),
      log,
      1000,
      undefined,
      convoyNotifier(mail, log),
    );
    ref.convoys = convoys;
    const orders = cityOrders(state, o, ops);
    const webhooks = new WebhookDelivery({
      workers: mailCfg.webhook_workers,
      allowPrivate: mailCfg.webhook_allow_private,
      timeoutMs: mailCfg.webhook_timeout_ms,
      ...(o.webhookCa ? { ca: o.webhookCa } : {}),
      onResult: recordWebhookResults(mail, state.events, log),
    });
    const config = o.config ?? (() => state.loaded);
    const mailFrom = async (from: string, to: string, subject: string, body: string) => {
      const m = await mail.send(from, to, { subject, body });
      await deliverMail({ provider: acting, keys: keyRing, webhooks }, log, m, true);
    };
    const alerts = new AlertWatch(
      {
        status: () => controller.status(),
        rigStats: () => refinery.stats(),
        events: state.events,
        rules: () => alertRules(config().config),
        mail: (to, subject, body) => mailFrom('alerts', to, subject, body),
        push: (url, alert) => {
          const at = new Date().toISOString();
          const name = String(alert.alert);
          // The push is named for breakers and reports; nothing is stored in a mailbox.
          webhooks.enqueue(
            url,
            {
              id: `alert:${name}`,
              from: 'alerts',
              to: `alert:${name}`,
              subject: name,
              body: typeof alert.message === 'string' ? alert.message : '',
              created_at: at,
              read: false,
              archived: false,
              thread_id: '',
              reply_to: '',
              priority: 1,
              cc: [],
            },
            alert,
          );
        },
        patrol: () => {
          const last = patrol.report().last;
          return last ? { last_ms: last.ms, findings: last.findings } : undefined;
        },
        log,
      },
      parseDuration(state.loaded.config.daemon.alert_interval),
    );
    const patrol = cityPatrol({
      state,
      config,
      provider: acting,
      controller,
      ops,
      refinery,
      alerts,
      mail: mailFrom,
      passed: (r) => metrics.observePatrol(r),
      log,
    });
    const costs = new CostWork({
      state,
      config,
      usage: records.usage,
      controller,
      provider: acting,
      worktrees,
      added: (rs) => metrics.observeUsage(rs),
      log,
    });
    const metrics = new CityMetrics({
      controller,
      ops,
      refinery,
      runs: runService,
      provider: acting,
      budgets: () => costs.budgets.view(),
    });
    ref.metrics = metrics;
    const counting = new AbortController();
    const counted = metrics.follow(await state.events.latestSeq(), counting.signal, log);
    const opened = { provider, keys: keyRing, records };
    return {
      root,
      spec,
      provider,
      keys: keyRing,
      records,
      ops,
      controller,
      mail,
      queue,
      refinery,
      convoys,
      orders,
      alerts,
      patrol,
      costs,
      metrics,
      worktrees,
      webhooks,
      runs: runService,
      sessionEnv,
      async close(say) {
        const steps: [string, () => unknown][] = [
          ['convoy patrol', () => convoys.stop()],
          ['orders', () => orders.stop()],
          ['patrol', () => patrol.stop()],
          ['costs', () => costs.stop()],
          ['alerts', () => alerts.stop()],
          [
            'metrics',
            () => {
              counting.abort();
              return counted;
            },
          ],
          ['merge queue', () => refinery.stop()],
          ['merge queue database', () => queue.close()],
          ['runs', () => runService.close()],
          ['webhooks', () => webhooks.stop()],
          ['idempotency database', () => opened.records.idempotency.close()],
          ['usage database', () => opened.records.usage.close()],
          ['outbox', () => ops.flush().finally(() => ops.close())],
          ['session provider', () => opened.provider.close()],
          ['key ring', () => opened.keys.close()],
        ];
        for (const [what, step] of steps) {
          try {
            await step();
          } catch (e) {
            say(`closing the ${what}: ${e instanceof Error ? e.message : String(e)}`);
          }
        }
      },
    };
  } catch (e) {
    runs?.close();
    await records?.idempotency.close();
    await records?.usage.close();
    await provider?.close();
    await keys?.close();
    throw e;
  }
}

/** How long one reading of the order files serves (event pokes ask often). */
const ORDER_SCAN_MS = 5000;

/** The order scheduler over the city's current config; the leader starts it. */
function cityOrders(state: CityState, o: ComposeOptions, ops: CityOps): OrderScheduler {
  const config = o.config ?? (() => state.loaded);
  let scan: { at: number; of: LoadedConfig; d: Discovered } | undefined;
  const orders = (): Discovered => {
    const of = config();
    if (!scan || scan.of !== of || Date.now() - scan.at > ORDER_SCAN_MS) {
      const d = discoverOrders(of);
      const said = new Set(scan?.d.issues.map(formatIssue));
      for (const i of d.issues.map(formatIssue)) if (!said.has(i)) o.log(`orders: ${i}`);
      scan = { at: Date.now(), of, d };
    }
    return scan.d;
  };
  return new OrderScheduler(
    {
      ops,
      root: state.loaded.root,
      orders,
      formulas: () => discoverFormulas(config()),
      agents: () => agentNames(config()),
      log: o.log,
      ...(o.mayAct ? { mayAct: o.mayAct } : {}),
    },
    parseDuration(state.loaded.config.orders.tick),
  );
}
