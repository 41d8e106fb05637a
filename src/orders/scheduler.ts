/**
 * The order scheduler: on the leader, every `[orders] tick` (and at once
 * when a matching event arrives), each order's gate is decided (gates.ts)
 * and a due order fires: a tracking bead `order:<name>` (type order,
 * labels order-tracking and order-run:<name>), `order.fired`, then the run.
 * An exec order runs `sh -c` in the city with its env and time limit and
 * its bead stays open until it ends (`order.completed` or `order.failed`);
 * a formula order pours its formula as a wisp whose root carries
 * order-run:<name>, so the order does not fire again until it completes.
 * Everything it knows comes from the store (the last run, the open run, the
 * event cursor), so a new leader takes over where the last one stopped.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import {
  ConflictError,
  errorMessage,
  GcError,
  NotFoundError,
  runFile,
  suggest,
  systemClock,
  type Clock,
} from '../core/index.js';
import type { CityOps } from '../city/index.js';
import type { Bead } from '../store/index.js';
import type { FormulaFile } from '../formula/index.js';
import { formatIssue } from '../config/index.js';
import { compileFor, pourMolecule } from '../dispatch/index.js';
import { decide, blocked, type GateDecision, type GateFacts } from './gates.js';
import type { Discovered } from './discover.js';
import { OrderError, orderName } from './parse.js';
import {
  ORDER_META,
  ORDER_TRACKING,
  orderView,
  runLabel,
  seqLabel,
  type OrderSpec,
  type OrderView,
} from './types.js';

export const ORDER_ACTOR = 'order';
/** Closed tracking beads kept per order (older ones are deleted). */
export const KEEP_RUNS = 50;
/** How long an order's molecule (a wisp) is kept after it completes. */
export const ORDER_WISP_TTL_MS = 24 * 3600_000;
const OUTPUT_BYTES = 1024 * 1024;

export interface OrderHost {
  ops: CityOps;
  /** The city's folder: where exec orders and checks run. */
  root: string;
  /** The city's orders and formulas now (they follow config reloads). */
  orders(): Discovered;
  formulas(): readonly FormulaFile[];
  /** Agents and pools a formula order's pool may name: as named, or as Gas City users write them (`binding.name`). */
  agents(): readonly { name: string; qualified?: string | undefined }[];
  log(line: string): void;
  clock?: Clock;
  /** Whether this server may act (the leader); orders run on the leader only. */
  mayAct?: () => boolean;
}

export interface OrderState {
  order: OrderView;
  decision: GateDecision;
  last_run?: { id: string; at: number; status: string; outcome: string };
  running?: string;
}

export interface OrderRun {
  order: string;
  run: Bead;
}

interface Facts {
  lastRun?: { id: string; at: number; status: string; outcome: string };
  running?: string;
  cursor: number;
}

const MAX_OUTCOME = 300;

export class OrderScheduler {
  private timer: NodeJS.Timeout | undefined;
  private pass: Promise<void> | undefined;
  private again = false;
  private stopped = true;
  private readonly clock: Clock;
  private readonly since = new Map<string, number>();
  /** Exec runs of this process: tracking bead -> its abort and its end. */
  private readonly live = new Map<string, { abort: AbortController; done: Promise<void> }>();

  constructor(
    private readonly host: OrderHost,
    private readonly tickMs = 30_000,
  ) {
    this.clock = host.clock ?? systemClock;
  }

  private watch: AbortController | undefined;
  private tail: Promise<void> = Promise.resolve();

  /** Begin: close the runs a stopped server left open, then tick and follow the log. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.sweep().catch((e: unknown) =>
      this.host.log(`orders: closing interrupted runs: ${errorMessage(e)}`),
    );
    this.timer = setInterval(() => this.kick(), this.tickMs);
    this.timer.unref();
    this.watch = new AbortController();
    this.tail = this.follow(await this.host.ops.events.latestSeq(), this.watch.signal);
    this.kick();
  }

  /** An event some event order waits for looks at the gates at once. */
  private async follow(from: number, signal: AbortSignal): Promise<void> {
    try {
      for await (const e of this.host.ops.events.watch(from, { signal })) {
        if (e.actor !== ORDER_ACTOR && this.eventTypes().has(e.type)) this.kick();
      }
    } catch (e) {
      if (!signal.aborted) this.host.log(`orders: watching the event log: ${errorMessage(e)}`);
    }
  }

  /** Stop ticking; running exec orders are killed and recorded as interrupted. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.watch?.abort();
    await this.tail;
    await this.pass;
    for (const r of this.live.values()) r.abort.abort(new Error('interrupted: the server stopped'));
    await Promise.all([...this.live.values()].map((r) => r.done));
  }

  /** Look at the gates now (coalesced with a pass under way). */
  kick(): void {
    if (this.stopped) return;
    if (this.pass) {
      this.again = true;
      return;
    }
    this.pass = this.tick()
      .then(
        () => undefined,
        (e: unknown) => this.host.log(`orders: ${errorMessage(e)}`),
      )
      .finally(() => {
        this.pass = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Event types some enabled event order waits for. */
  eventTypes(): Set<string> {
    return new Set(
      this.host
        .orders()
        .orders.filter((o) => o.gate === 'event' && o.enabled && o.on)
        .map((o) => o.on!),
    );
  }

  /** One pass: fire every due order. Returns the runs it started. */
  async tick(): Promise<OrderRun[]> {
    const d = this.host.orders();
    const fired: OrderRun[] = [];
    for (const o of d.orders) {
      try {
        const st = await this.state(o, d.skipped.includes(o.name), true);
        if (!st.decision.due) continue;
        fired.push(await this.fire(o, st.decision.reason, ORDER_ACTOR, st.cursorTo));
      } catch (e) {
        this.host.log(`order ${o.name}: ${errorMessage(e)}`);
      }
    }
    return fired;
  }

  /** Every order as discovered, with the mistakes of the ones that could not be read. */
  list(): { orders: OrderView[]; issues: string[] } {
    const d = this.host.orders();
    return {
      orders: d.orders.map((o) => orderView(o, d.skipped.includes(o.name))),
      issues: d.issues.map(formatIssue),
    };
  }

  /** Every order with its gate's decision (conditions are run: nothing fires). */
  async check(): Promise<OrderState[]> {
    const d = this.host.orders();
    const out: OrderState[] = [];
    for (const o of d.orders) {
      const st = await this.state(o, d.skipped.includes(o.name), true);
      out.push(publicState(st));
    }
    return out;
  }

  /** One order with its decision; `runCheck` runs a condition's check. */
  async status(name: string, runCheck = false): Promise<OrderState> {
    const d = this.host.orders();
    const o = this.find(d, name);
    return publicState(await this.state(o, d.skipped.includes(o.name), runCheck));
  }

  /** Fire an order now, whatever its gate (refused while a run is open). */
  async run(name: string, actor: string): Promise<OrderRun> {
    if (this.host.mayAct && !this.host.mayAct()) {
      throw new GcError('unavailable', 'orders run on the leader: this server does not lead', {
        fix: 'call the leader (gc status shows the servers), or retry once one is elected',
      });
    }
    const d = this.host.orders();
    const o = this.find(d, name);
    const facts = await this.facts(o);
    if (facts.running) {
      throw new ConflictError(`order ${name} is still running (${facts.running})`, {
        fix: `wait for it: gc order history ${name}`,
      });
    }
    const cursorTo = o.gate === 'event' ? await this.host.ops.events.latestSeq() : undefined;
    return this.fire(o, `run by ${actor}`, actor, cursorTo);
  }

  /** Wait for an exec run of this process to end. */
  async settled(runId: string): Promise<void> {
    await this.live.get(runId)?.done;
  }

  /** The runs of one order (or all), newest first. */
  async history(name?: string, limit = 20): Promise<Bead[]> {
    if (name !== undefined) this.find(this.host.orders(), name);
    const beads = await this.all(name !== undefined ? runLabel(name) : ORDER_TRACKING);
    return beads
      .filter((b) => b.issue_type === 'order')
      .sort((a, b) => firedAt(b) - firedAt(a) || b.id.localeCompare(a.id))
      .slice(0, limit);
  }

  private find(d: Discovered, name: string): OrderSpec {
    const o = d.orders.find((x) => x.name === name);
    if (o) return o;
    // A file of that name that could not be read: say why.
    const broken = d.issues.filter((i) => orderName(i.file) === name);
    if (broken.length) throw new OrderError(broken);
    const hint = suggest(
      name,
      d.orders.map((x) => x.name),
    );
    throw new NotFoundError('order', name, {
      fix: hint ? `did you mean ${hint}? gc order list shows them` : 'gc order list shows them',
    });
  }

  private async all(label: string): Promise<Bead[]> {
    const out: Bead[] = [];
    let cursor: string | undefined;
    do {
      const p = await this.host.ops.store.list({
        label,
        limit: 1000,
        ...(cursor ? { cursor } : {}),
      });
      out.push(...p.items);
      cursor = p.next_cursor ?? undefined;
    } while (cursor);
    return out;
  }

  private async facts(o: OrderSpec): Promise<Facts> {
    const beads = await this.all(runLabel(o.name));
    const open = beads.find((b) => b.status !== 'closed');
    let last: Facts['lastRun'];
    let cursor = 0;
    for (const b of beads) {
      if (b.issue_type !== 'order') continue;
      const at = firedAt(b);
      if (!last || at > last.at) {
        last = { id: b.id, at, status: b.status, outcome: b.close_reason ?? '' };
      }
      for (const l of b.labels) {
        const m = /^seq:(\d+)$/.exec(l);
        if (m) cursor = Math.max(cursor, Number(m[1]));
      }
    }
    return { ...(last ? { lastRun: last } : {}), ...(open ? { running: open.id } : {}), cursor };
  }

  private async state(
    o: OrderSpec,
    skipped: boolean,
    runCheck: boolean,
  ): Promise<OrderState & { cursorTo?: number; spec: OrderSpec }> {
    const now = this.clock.now();
    if (!this.since.has(o.name)) this.since.set(o.name, now);
    const facts = await this.facts(o);
    const f: GateFacts = {
      now,
      lastRun: facts.lastRun?.at,
      running: facts.running,
      skipped,
      watchingSince: this.since.get(o.name)!,
      cursor: facts.cursor,
    };
    let cursorTo: number | undefined;
    const open = blocked(o, f) === undefined;
    if (open && o.gate === 'event') {
      cursorTo = await this.host.ops.events.latestSeq();
      f.newEvent = await this.newEvent(o.on!, facts.cursor, cursorTo);
    }
    if (open && o.gate === 'condition' && runCheck) f.condition = await this.condition(o);
    return {
      spec: o,
      order: orderView(o, skipped),
      decision: decide(o, f),
      ...(facts.lastRun ? { last_run: facts.lastRun } : {}),
      ...(facts.running ? { running: facts.running } : {}),
      ...(cursorTo !== undefined ? { cursorTo } : {}),
    };
  }

  /** The first event of `type` after `cursor` (up to `upTo`) not caused by an order's own beads. */
  private async newEvent(type: string, cursor: number, upTo: number): Promise<number | undefined> {
    let after = cursor;
    while (after < upTo) {
      const p = await this.host.ops.events.list({ type, afterSeq: after, limit: 1000 });
      const hit = p.items.find((e) => e.seq <= upTo && e.actor !== ORDER_ACTOR);
      if (hit) return hit.seq;
      if (p.next_after_seq === null || !p.items.length) return undefined;
      after = p.next_after_seq;
    }
    return undefined;
  }

  private env(o: OrderSpec, run?: string, seq?: number): Record<string, string> {
    const root = this.host.root;
    return {
      ...o.env,
      GC_CITY: root,
      GC_CITY_PATH: root,
      GC_CITY_ROOT: root,
      GC_RIG: o.rig,
      GC_ORDER: o.name,
      ORDER_DIR: path.dirname(o.file),
      PACK_DIR: o.packDir,
      GC_PACK_DIR: o.packDir,
      GC_PACK_NAME: o.pack,
      ...(run ? { GC_ORDER_RUN: run } : {}),
      ...(seq !== undefined ? { GC_EVENT_SEQ: String(seq) } : {}),
    };
  }

  private async condition(o: OrderSpec): Promise<{ ok: boolean; reason: string }> {
    try {
      const r = await runFile('sh', ['-c', o.check!], {
        cwd: o.workDir,
        env: { ...process.env, ...this.env(o) },
        timeoutMs: o.checkTimeoutMs,
        maxOutputBytes: 64 * 1024,
      });
      if (r.timedOut) return { ok: false, reason: `check timed out after ${o.checkTimeoutMs} ms` };
      if (r.code === 0) return { ok: true, reason: 'check passed (exit 0)' };
      return { ok: false, reason: `not met (exit ${r.code ?? r.signal})` };
    } catch (e) {
      return { ok: false, reason: `check could not run: ${errorMessage(e)}` };
    }
  }

  private async fire(
    o: OrderSpec,
    reason: string,
    actor: string,
    cursorTo?: number,
  ): Promise<OrderRun> {
    const { ops } = this.host;
    const at = this.clock.now();
    const run = await ops.createBead(ORDER_ACTOR, {
      title: `order:${o.name}`,
      type: 'order',
      description: o.description,
      labels: [
        ORDER_TRACKING,
        runLabel(o.name),
        ...(cursorTo !== undefined ? [seqLabel(cursorTo)] : []),
      ],
      metadata: {
        [ORDER_META.name]: o.name,
        [ORDER_META.gate]: o.gate,
        [ORDER_META.firedAt]: String(at),
        [ORDER_META.reason]: reason,
        ...(cursorTo !== undefined ? { [ORDER_META.seq]: String(cursorTo) } : {}),
      },
    });
    await ops.events.record({
      type: 'order.fired',
      actor,
      subject: run.id,
      payload: { order: o.name, gate: o.gate, kind: o.exec ? 'exec' : 'formula', reason },
      message: `order ${o.name} fired (${reason}): ${run.id}`,
    });
    if (o.exec) {
      const abort = new AbortController();
      const done = this.exec(o, run, abort.signal, cursorTo).finally(() =>
        this.live.delete(run.id),
      );
      this.live.set(run.id, { abort, done });
    } else {
      await this.pour(o, run, actor);
    }
    await this.prune(o.name);
    return { order: o.name, run: await ops.store.get(run.id) };
  }

  private async exec(o: OrderSpec, run: Bead, signal: AbortSignal, seq?: number): Promise<void> {
    const started = Date.now();
    let ok = false;
    let outcome: string;
    let code: number | null = null;
    let output = '';
    try {
      const r = await runFile('sh', ['-c', o.exec!], {
        cwd: o.workDir,
        env: { ...process.env, ...this.env(o, run.id, seq) },
        timeoutMs: o.timeoutMs,
        signal,
        maxOutputBytes: OUTPUT_BYTES,
      });
      code = r.code;
      output = r.stdout + r.stderr;
      if (r.timedOut) outcome = `timed out after ${o.timeoutMs / 1000}s`;
      else if (r.code === 0) {
        ok = true;
        outcome = 'exit 0';
      } else outcome = r.code === null ? `killed by ${r.signal}` : `exit ${r.code}`;
    } catch (e) {
      outcome = signal.aborted ? errorMessage(signal.reason) : `could not run: ${errorMessage(e)}`;
    }
    const log = this.writeLog(run.id, output);
    await this.finish(o, run, ok, outcome, {
      duration_ms: Date.now() - started,
      ...(code !== null ? { exit_code: code } : {}),
      ...(log ? { log } : {}),
    });
  }

  /** Run output goes to .gc/orders/<run>.log (never into beads or events). */
  private writeLog(run: string, output: string): string | undefined {
    if (!output) return undefined;
    try {
      const dir = path.join(this.host.root, '.gc', 'orders');
      mkdirSync(dir, { recursive: true });
      const file = path.join(dir, `${run}.log`);
      writeFileSync(file, output, { mode: 0o600 });
      return file;
    } catch (e) {
      this.host.log(`order run ${run}: output not kept: ${errorMessage(e)}`);
      return undefined;
    }
  }

  private async pour(o: OrderSpec, run: Bead, actor: string): Promise<void> {
    const started = Date.now();
    try {
      const target = o.pool ? this.poolName(o.pool) : undefined;
      const poured = await withTimeout(
        (async () => {
          const compiled = compileFor(ownLayer(this.host.formulas(), o), o.formula!, {});
          const p = await pourMolecule(this.host.ops, ORDER_ACTOR, compiled, {
            ...(target ? { target } : {}),
            wispTtlMs: ORDER_WISP_TTL_MS,
          });
          await this.host.ops.updateBead(ORDER_ACTOR, p.root.id, {
            labels: [runLabel(o.name)],
            metadata: { [ORDER_META.name]: o.name },
          });
          return p;
        })(),
        o.timeoutMs,
      );
      await this.host.ops.setMetadata(ORDER_ACTOR, run.id, ORDER_META.molecule, poured.root.id);
      await this.finish(o, run, true, `poured ${poured.root.id}`, {
        molecule: poured.root.id,
        steps: poured.steps.length,
        duration_ms: Date.now() - started,
      });
    } catch (e) {
      const fix = e instanceof GcError && e.fix ? ` (${e.fix})` : '';
      await this.finish(o, run, false, `${errorMessage(e)}${fix}`, {
        duration_ms: Date.now() - started,
      });
      if (actor !== ORDER_ACTOR) throw e;
    }
  }

  /** The agent or pool `pool` names (its own name, or `binding.name`), or a NotFoundError. */
  private poolName(pool: string): string {
    const agents = this.host.agents();
    const hit = agents.find((a) => a.name === pool) ?? agents.find((a) => a.qualified === pool);
    if (hit) return hit.name;
    const hint = suggest(
      pool,
      agents.map((a) => a.qualified ?? a.name),
    );
    throw new NotFoundError('agent', pool, {
      fix: hint ? `did you mean ${hint}?` : 'pool names an agent or pool of the city',
    });
  }

  private async finish(
    o: OrderSpec,
    run: Bead,
    ok: boolean,
    outcome: string,
    extra: Record<string, unknown>,
  ): Promise<void> {
    const { ops } = this.host;
    const short = outcome.length > MAX_OUTCOME ? `${outcome.slice(0, MAX_OUTCOME)}...` : outcome;
    try {
      if (typeof extra.exit_code === 'number') {
        await ops.setMetadata(ORDER_ACTOR, run.id, ORDER_META.exit, String(extra.exit_code));
      }
      await ops.closeBead(ORDER_ACTOR, run.id, ok ? short : `failed: ${short}`);
      await ops.events.record({
        type: ok ? 'order.completed' : 'order.failed',
        actor: ORDER_ACTOR,
        subject: run.id,
        payload: { order: o.name, outcome: short, ...extra },
        message: `order ${o.name} ${ok ? 'completed' : 'failed'} (${run.id}): ${short}`,
      });
    } catch (e) {
      this.host.log(`order ${o.name}: recording the end of ${run.id}: ${errorMessage(e)}`);
    }
  }

  /** Keep the newest KEEP_RUNS closed tracking beads of an order. */
  private async prune(name: string): Promise<void> {
    const runs = (await this.all(runLabel(name)))
      .filter((b) => b.issue_type === 'order' && b.status === 'closed')
      .sort((a, b) => firedAt(b) - firedAt(a));
    for (const b of runs.slice(KEEP_RUNS)) {
      try {
        await this.host.ops.deleteBead(ORDER_ACTOR, b.id);
      } catch (e) {
        this.host.log(`order ${name}: pruning ${b.id}: ${errorMessage(e)}`);
      }
    }
  }

  /** Runs left open by a server that stopped (none of them runs here): interrupted. */
  private async sweep(): Promise<void> {
    const open = (await this.all(ORDER_TRACKING)).filter(
      (b) => b.issue_type === 'order' && b.status !== 'closed' && !this.live.has(b.id),
    );
    const byName = new Map(this.host.orders().orders.map((o) => [o.name, o]));
    for (const b of open) {
      const name = b.metadata[ORDER_META.name] ?? b.title.replace(/^order:/, '');
      const o = byName.get(name) ?? ({ name } as OrderSpec);
      await this.finish(o, b, false, 'interrupted: the server running it stopped', {});
    }
  }
}

function firedAt(b: Bead): number {
  const v = Number(b.metadata[ORDER_META.firedAt]);
  return Number.isFinite(v) && v > 0 ? v : Date.parse(b.created_at);
}

function publicState(st: OrderState & { cursorTo?: number; spec: OrderSpec }): OrderState {
  const { cursorTo: _c, spec: _s, ...rest } = st;
  return rest;
}

/** The order's formula from its own pack when that pack has it, else the city's. */
function ownLayer(files: readonly FormulaFile[], o: OrderSpec): FormulaFile[] {
  const dir = path.join(o.packDir, 'formulas');
  return files.map((f) => {
    if (f.name !== o.formula || path.dirname(f.file) === dir) return f;
    const own = f.shadows.find((s) => path.dirname(s) === dir);
    return own ? { ...f, file: own } : f;
  });
}

async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000}s`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
