/**
 * The leader's work, taken up when a server gains the lease (or at start,
 * for the one server of a city on SQLite) and put down when it loses it:
 * the controller, the merge queue engines, runs, convoy patrols, orders, the city
 * socket (`.gc/gc.sock`, where sessions and the CLI reach the city), and
 * a watch on the event log that pokes them on other servers' writes.
 */
import { errorMessage } from '../core/index.js';
import type { CityState } from '../city/index.js';
import type { EventInput, GcEvent } from '../events/index.js';
import type { CityParts } from './compose.js';

/** What the leader's work needs from its server. */
export interface LeaderHost {
  readonly parts: CityParts;
  readonly cityState: CityState;
  readonly id: string;
  readonly log: (line: string) => void;
  /** Several servers share the city (a database). */
  readonly shared: boolean;
  /** Answer on the city socket too (false: stop). */
  citySocket(on: boolean): Promise<void>;
  /** Read the city-wide flags again (suspended): another leader may have set them. */
  takeUpFlags(): Promise<void>;
}

export class LeaderWork {
  private readonly watch = new AbortController();
  private tail: Promise<void> = Promise.resolve();

  constructor(
    private readonly host: LeaderHost,
    readonly term: number,
  ) {}

  private get parts(): CityParts {
    return this.host.parts;
  }

  async start(): Promise<void> {
    const { parts, host } = this;
    const events = host.cityState.events;
    if (host.shared) {
      // Events a crash of the last leader left between the store and the log.
      const recovered = await parts.ops.recover();
      if (recovered) host.log(`events: ${recovered} committed event(s) recovered from the outbox`);
      await parts.runs.takeUp();
      await host.takeUpFlags();
      await host.citySocket(true);
    }
    const spec = parts.controller.currentSpec;
    const from = host.shared ? await events.latestSeq() : 0;
    await this.record({
      type: 'controller.started',
      actor: 'controller',
      subject: spec.name,
      payload: {
        pid: process.pid,
        provider: parts.provider.name,
        server: host.id,
        ...(host.shared ? { term: this.term } : {}),
      },
      message: host.shared
        ? `city ${spec.name}: server ${host.id} leads (term ${this.term}, pid ${process.pid}, sessions on ${parts.provider.name})`
        : `city ${spec.name} started (pid ${process.pid}, sessions on ${parts.provider.name})`,
    });
    const kept = await parts.controller.loadFacts();
    if (kept) host.log(`controller: crash-loop records of ${kept} session(s) taken up`);
    parts.controller.start();
    await parts.refinery.start();
    parts.convoys.start();
    await parts.orders.start();
    await parts.alerts.start();
    parts.patrol.start();
    await parts.costs.start();
    if (host.shared) this.tail = this.follow(from);
  }

  /**
   * Writes taken by the other servers reach this one through the log:
   * each event pokes what it concerns (the controller coalesces pokes).
   */
  private async follow(from: number): Promise<void> {
    const { parts } = this;
    try {
      for await (const e of this.host.cityState.events.watch(from, {
        signal: this.watch.signal,
      })) {
        this.poke(e);
      }
    } catch (err) {
      if (this.watch.signal.aborted) return;
      this.host.log(`leader: watching the event log: ${errorMessage(err)}; polling instead`);
      // The controller's patrol and the engines' polls still pick work up.
      parts.controller.poke();
    }
  }

  private poke(e: GcEvent): void {
    const { parts } = this;
    if (e.type.startsWith('mq.')) {
      const rig = (e.payload as { rig?: unknown } | undefined)?.rig;
      parts.refinery.kick(typeof rig === 'string' ? rig : undefined);
      return;
    }
    // A closed step may complete its molecule, and that its convoy.
    if (
      e.type.startsWith('convoy.') ||
      e.type.startsWith('molecule.') ||
      e.type === 'bead.closed'
    ) {
      parts.convoys.kick();
    }
    if (e.type.startsWith('bead.') || e.type.startsWith('mail.') || e.type.startsWith('convoy.')) {
      parts.controller.nudge();
    }
  }

  /**
   * Put the work down. 'detach' leaves the sessions running for the next
   * leader; 'shutdown' stops them (the city stops) and records it.
   */
  async stop(mode: 'detach' | 'shutdown', reason = 'requested'): Promise<void> {
    const { parts, host } = this;
    this.watch.abort();
    const steps: [string, () => unknown][] = [];
    if (mode === 'shutdown') {
      steps.push(
        ['shutdown', () => parts.controller.shutdown()],
        // Sessions stopped above hand their worktrees back: prune them while
        // the merge queue they consult is still open.
        ['worktrees', () => parts.worktrees.settle()],
        [
          'stop event',
          () =>
            this.record({
              type: 'controller.stopped',
              actor: 'controller',
              subject: parts.controller.currentSpec.name,
              payload: { reason, server: host.id },
              message: `city ${parts.controller.currentSpec.name} stopped (${reason})`,
            }),
        ],
      );
    } else {
      steps.push(['controller', () => parts.controller.detach()]);
    }
    steps.push(
      ['convoy patrol', () => parts.convoys.stop()],
      ['orders', () => parts.orders.stop()],
      ['patrol', () => parts.patrol.stop()],
      ['costs', () => parts.costs.stop()],
      ['alerts', () => parts.alerts.stop()],
      ['merge queue', () => parts.refinery.stop()],
      ['event watch', () => this.tail],
    );
    if (host.shared) steps.push(['city socket', () => host.citySocket(false)]);
    for (const [what, step] of steps) {
      try {
        await step();
      } catch (e) {
        host.log(`leader: putting down the ${what}: ${errorMessage(e)}`);
      }
    }
  }

  /** Record an event whose loss must not undo what it records: a failure is logged. */
  private async record(event: EventInput): Promise<void> {
    try {
      await this.host.cityState.events.record(event);
    } catch (e) {
      this.host.log(`event ${event.type} not recorded: ${errorMessage(e)}`);
    }
  }
}
