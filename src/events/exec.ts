/**
 * The event log through a user script (`[events] provider = "exec:<script>"`),
 * Gas City's exec events protocol (REFERENCE.md 3). The script gets the
 * operation as argv (never through a shell), JSON on stdin, and prints on
 * stdout. Exit 0 = success, 2 = unsupported (treated as success where gc
 * can do without an answer), anything else = failure, described by stderr.
 *
 *   ensure-running                                        (optional)
 *   record        stdin event {type,ts,actor,...}     -> the stored event (with seq), or nothing
 *   list          stdin {Type,Actor,Since,AfterSeq}   -> [event] (empty output = none)
 *   latest-seq                                        -> decimal (empty = 0)
 *   watch AFTER_SEQ                                   -> NDJSON events, long-running
 *
 * Input is checked here first, so every backend refuses the same things.
 * Records are sent one at a time in call order (gap-free seqs need one
 * writer). Lists are filtered and paged here as well, since a script may
 * filter less than asked. Watchers in this process see records at once;
 * records by other processes arrive through the script's `watch` (or, when
 * it does not support one, by polling `latest-seq`).
 */
import {
  GcError,
  UnsupportedError,
  checkScript,
  errorMessage,
  runScript,
  startProcess,
  systemClock,
  type Clock,
  type ScriptOptions,
} from '../core/index.js';
import type { EventLog } from './event-log.js';
import {
  checkAfterSeq,
  checkEventInput,
  materialize,
  eventMatcher,
  eventPageSize,
  sinceMs,
} from './filter.js';
import { Hub } from './subscription.js';
import type { EventInput, EventListQuery, EventPage, GcEvent, WatchOptions } from './types.js';
import { watchLog } from './watch.js';

export interface ExecEventsOptions extends ScriptOptions {
  clock?: Clock;
  /** How often to ask `latest-seq` when the script has no `watch` (default 500 ms). */
  pollMs?: number;
}

function asEvent(v: unknown, op: string): GcEvent {
  const e = v as Partial<GcEvent> | null;
  const seq = Number(e?.seq);
  if (
    !e ||
    typeof e !== 'object' ||
    !Number.isInteger(seq) ||
    seq < 1 ||
    typeof e.type !== 'string'
  ) {
    throw new GcError(
      'internal',
      `events script ${op}: expected an event with seq and type, got ${JSON.stringify(v)?.slice(0, 200)}`,
    );
  }
  const out: GcEvent = { seq, type: e.type, ts: String(e.ts ?? ''), actor: String(e.actor ?? '') };
  if (e.subject !== undefined && e.subject !== null && e.subject !== '')
    out.subject = String(e.subject);
  if (e.message !== undefined && e.message !== null && e.message !== '')
    out.message = String(e.message);
  if (e.payload !== undefined && e.payload !== null) out.payload = e.payload;
  return out;
}

export class ExecEventLog implements EventLog {
  readonly backend = 'exec';
  private readonly hub = new Hub();
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;
  private watchers = 0;
  private stopWatcher: (() => void) | undefined;

  constructor(
    readonly script: string,
    private readonly options: ExecEventsOptions = {},
  ) {}

  private async call(op: string, args: string[], input?: unknown): Promise<string | undefined> {
    const r = await runScript(
      'events',
      this.script,
      [op, ...args],
      input === undefined ? '' : JSON.stringify(input),
      this.options,
    );
    if (r.code === 2) return undefined;
    if (r.code !== 0) {
      const message = r.stderr.trim() || `exit status ${r.code}`;
      throw new GcError('unavailable', `events script ${op} failed: ${message}`, {
        details: { op, exit: r.code },
      });
    }
    return r.stdout.trim();
  }

  private parse(text: string, op: string): unknown {
    try {
      return JSON.parse(text) as unknown;
    } catch (e) {
      throw new GcError(
        'internal',
        `events script ${op}: output is not JSON (${errorMessage(e)}): ${text.slice(0, 200)}`,
      );
    }
  }

  /** Check the script, then run the optional `ensure-running` op (exit 2 = not needed). */
  async open(): Promise<this> {
    await checkScript('events', this.script);
    await this.call('ensure-running', []);
    return this;
  }

  record(input: EventInput): Promise<GcEvent> {
    const run = async (): Promise<GcEvent> => {
      if (this.closed) throw new GcError('conflict', 'event log is closed');
      checkEventInput(input);
      // materialize checks the size; the script assigns the seq.
      const { seq: _, ...body } = materialize(
        input,
        0,
        (this.options.clock ?? systemClock).now(),
      ).event;
      const out = await this.call('record', [], body);
      if (out === undefined) throw new UnsupportedError('events script does not support record');
      const event = out
        ? asEvent(this.parse(out, 'record'), 'record')
        : { ...body, seq: await this.latestSeq() };
      this.hub.publish([event]);
      return event;
    };
    const p = this.tail.then(run, run);
    this.tail = p.catch(() => undefined);
    return p;
  }

  async list(query: EventListQuery = {}): Promise<EventPage> {
    const limit = eventPageSize(query.limit);
    const after = checkAfterSeq(query.afterSeq);
    const since = sinceMs(query.since);
    const filter: Record<string, unknown> = { AfterSeq: after };
    // A single exact type narrows the script's answer; patterns and lists are matched here.
    if (typeof query.type === 'string' && !query.type.includes('*')) filter.Type = query.type;
    if (query.actor !== undefined) filter.Actor = query.actor;
    if (since !== undefined) filter.Since = new Date(since).toISOString();
    const out = await this.call('list', [], filter);
    const raw = out ? this.parse(out, 'list') : [];
    if (!Array.isArray(raw))
      throw new GcError('internal', 'events script list: expected a JSON array');
    const matches = eventMatcher(query);
    const all = raw
      .map((v) => asEvent(v, 'list'))
      .filter((e) => e.seq > after && matches(e))
      .sort((a, b) => a.seq - b.seq);
    const items = all.slice(0, limit);
    const more = all.length > limit;
    return { items, next_after_seq: more ? items[items.length - 1]!.seq : null };
  }

  async latestSeq(): Promise<number> {
    const out = await this.call('latest-seq', []);
    if (!out) return 0;
    const n = Number(out);
    if (!Number.isInteger(n) || n < 0) {
      throw new GcError(
        'internal',
        `events script latest-seq: expected a number, got ${out.slice(0, 40)}`,
      );
    }
    return n;
  }

  watch(afterSeq: number, options: WatchOptions = {}): AsyncIterable<GcEvent> {
    return this.watching(afterSeq, options);
  }

  private async *watching(afterSeq: number, options: WatchOptions): AsyncGenerator<GcEvent> {
    this.watchers++;
    if (this.watchers === 1) this.startWatcher(afterSeq);
    try {
      yield* watchLog(this.hub, (q) => this.list(q), afterSeq, options);
    } finally {
      this.watchers--;
      if (this.watchers === 0) this.stopWatcher?.();
    }
  }

  /** Follow records by other processes: the script's `watch`, else polling `latest-seq`. */
  private startWatcher(afterSeq: number): void {
    let stopped = false;
    let timer: NodeJS.Timeout | undefined;
    const proc = startProcess(this.script, ['watch', String(afterSeq)], {
      env: { ...process.env, ...this.options.env },
      ...(this.options.cwd ? { cwd: this.options.cwd } : {}),
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    let buffered = '';
    proc.child?.stdout?.setEncoding('utf8');
    proc.child?.stdout?.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (!line) continue;
        try {
          this.hub.publish([asEvent(JSON.parse(line), 'watch')]);
        } catch {
          this.hub.poke(); // a line gc cannot read: re-read through list
        }
      }
    });
    let seen = afterSeq;
    const poll = () => {
      if (stopped) return;
      this.latestSeq()
        .then(
          (n) => {
            if (n > seen) {
              seen = n;
              this.hub.poke();
            }
          },
          () => undefined,
        )
        .finally(() => {
          if (!stopped) timer = setTimeout(poll, this.options.pollMs ?? 500);
        });
    };
    proc.exited.then(
      () => {
        if (!stopped) poll(); // no watch op (or it ended): poll instead
      },
      () => undefined,
    );
    this.stopWatcher = () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      proc.child?.kill('SIGTERM');
      this.stopWatcher = undefined;
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.tail;
    this.stopWatcher?.();
    this.hub.closeAll();
  }
}
