/**
 * CityOps: every bead operation a client can ask for, applied to the store
 * and recorded in the event log as one step, on behalf of an actor. The city
 * server runs these for API requests and LocalCity for the CLI, so an
 * operation behaves and is recorded the same way whichever path it took.
 *
 * One commit per change: each write hands the store its events (and, inside
 * an API request with an Idempotency-Key, the request's place), and they
 * commit in the write's transaction. The publisher then appends the events
 * to the log in commit order; an operation resolves once its events are in
 * the log (or, if the log fails, once they are safe in the outbox, to be
 * appended when it works again).
 */
import {
  ConflictError,
  errorMessage,
  nextRequestWrite,
  outsideRequest,
  unusedRequestWrite,
} from '../core/index.js';
import type { EventLog } from '../events/index.js';
import type {
  Bead,
  CloseResult,
  CreateBeadInput,
  OutboxEvent,
  ReadyQuery,
  Store,
  UpdateBeadInput,
  WriteRecord,
} from '../store/index.js';
import { Publisher } from './publish.js';

export interface ClaimRequest {
  /** Lease in ms; the store default when absent. */
  leaseMs?: number;
}

export interface UnclaimRequest {
  /** Only if still this attempt (fencing). */
  attempt?: number;
  /** Release someone else's claim (operators only, once auth exists). */
  force?: boolean;
}

export class CityOps {
  /** Sessions being stopped: they may not take new work (see `fenceClaims`). */
  private readonly fenced = new Set<string>();
  /** Claims under way, by holder, and who waits for them to settle. */
  private readonly claiming = new Map<string, number>();
  private readonly settleWaiters = new Map<string, (() => void)[]>();

  private readonly publisher: Publisher;

  constructor(
    readonly store: Store,
    readonly events: EventLog,
    /** Called after every write (the server pokes its controller). */
    private readonly onWrite: () => void = () => undefined,
    log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
    /**
     * Whether an operation waits for its events to reach the log before it
     * resolves (default). The city server answers once the store committed
     * (the events are durable in the outbox from then on) and appends
     * behind the answer; its event reads call `published()` first, so a
     * client still reads its own events.
     */
    private readonly awaitLog = true,
  ) {
    this.publisher = new Publisher(store, events, log);
  }

  /** Resolves once every event committed so far is in the log (call before reading the log). */
  async published(): Promise<void> {
    try {
      await this.publisher.publish();
    } catch (e) {
      this.publisher.failed(errorMessage(e));
    }
  }

  /** Append what a crash left in the outbox (skipping what reached the log). Run at open. */
  recover(): Promise<number> {
    return this.publisher.recover();
  }

  /** Wait until every committed event is in the log and the outbox is trimmed (tests, shutdown). */
  async flush(): Promise<void> {
    await this.publisher.publish();
    await this.publisher.settled();
  }

  /** Stop retrying failed appends (the store and log are about to close). */
  close(): void {
    this.publisher.stop();
  }

  /** The record for a write: its events, and its place in the current request. */
  private rec<T>(
    actor: string,
    events: (result: T) => Omit<OutboxEvent, 'actor'>[],
  ): WriteRecord<T> {
    return {
      events: (r) => events(r).map((e) => ({ ...e, actor })),
      request: nextRequestWrite(),
    };
  }

  /**
   * For writes made outside these operations that still commit their
   * events with them (the store-backed mail): their record, and the step
   * after each write.
   */
  recorder(): {
    rec<T>(events: (result: T) => OutboxEvent[]): WriteRecord<T>;
    written(): Promise<void>;
  } {
    return {
      rec: <T>(events: (result: T) => OutboxEvent[]): WriteRecord<T> => ({
        events,
        request: nextRequestWrite(),
      }),
      // Its events go on to the log; the controller is not woken (mail is not its work).
      written: async () => {
        const appended = outsideRequest(() => this.published());
        if (this.awaitLog) await appended;
      },
    };
  }

  /** After a write committed: its events to the log, then wake the controller. */
  private async written(): Promise<void> {
    // Committed, and its events are safe in the outbox: if appending fails,
    // the publisher retries. The caller's write succeeded either way.
    const appended = outsideRequest(() => this.published());
    if (this.awaitLog) await appended;
    outsideRequest(() => this.onWrite());
  }

  /**
   * Refuse new claims by `holders` (sessions about to be stopped), then
   * resolve once every claim by them already under way has committed or
   * failed. After this, the store holds every claim they will ever have
   * until `unfenceClaims`: a read decides safely whether they are idle.
   */
  async fenceClaims(holders: readonly string[]): Promise<void> {
    for (const h of holders) this.fenced.add(h);
    const busy = holders.filter((h) => (this.claiming.get(h) ?? 0) > 0);
    await Promise.all(
      busy.map(
        (h) =>
          new Promise<void>((resolve) => {
            const list = this.settleWaiters.get(h) ?? [];
            list.push(resolve);
            this.settleWaiters.set(h, list);
          }),
      ),
    );
  }

  unfenceClaims(holders: readonly string[]): void {
    for (const h of holders) this.fenced.delete(h);
  }

  /** Run a claim (or an assignment) for `holder`, unless it is fenced. */
  private async claimFor<T>(holder: string, op: () => Promise<T>): Promise<T> {
    if (this.fenced.has(holder)) {
      throw new ConflictError(`${holder} is being stopped and takes no new work`, {
        fix: 'the controller is stopping this session; its work goes to another',
      });
    }
    this.claiming.set(holder, (this.claiming.get(holder) ?? 0) + 1);
    try {
      return await op();
    } finally {
      const left = (this.claiming.get(holder) ?? 1) - 1;
      if (left > 0) this.claiming.set(holder, left);
      else {
        this.claiming.delete(holder);
        for (const r of this.settleWaiters.get(holder) ?? []) r();
        this.settleWaiters.delete(holder);
      }
    }
  }

  private static ev(
    type: string,
    subject: string,
    payload?: unknown,
    message?: string,
  ): Omit<OutboxEvent, 'actor'> {
    return {
      type,
      subject,
      ...(payload !== undefined ? { payload } : {}),
      ...(message !== undefined ? { message } : {}),
    };
  }

  private static created(b: Bead): Omit<OutboxEvent, 'actor'> {
    return CityOps.ev(
      'bead.created',
      b.id,
      {
        title: b.title,
        type: b.issue_type,
        priority: b.priority,
        parent: b.parent || undefined,
        ...(b.status !== 'open' ? { status: b.status } : {}),
        ...(b.assignee ? { assignee: b.assignee } : {}),
      },
      b.title,
    );
  }

  async createBead(actor: string, input: CreateBeadInput): Promise<Bead> {
    const bead = await this.store.create(
      { from: actor, ...input },
      this.rec(actor, (b: Bead) => [CityOps.created(b)]),
    );
    await this.written();
    return bead;
  }

  /**
   * Several beads in one store transaction (`Store.createMany`: `#N` names
   * an earlier one), each recorded by its own `bead.created`, plus `extra`
   * events about the batch as a whole.
   */
  async createBeads(
    actor: string,
    inputs: readonly CreateBeadInput[],
    extra: (made: Bead[]) => Omit<OutboxEvent, 'actor'>[] = () => [],
  ): Promise<Bead[]> {
    const made = await this.store.createMany(
      inputs.map((i) => ({ from: actor, ...i })),
      this.rec(actor, (beads: Bead[]) => [
        ...beads.map((b) => CityOps.created(b)),
        ...extra(beads),
      ]),
    );
    await this.written();
    return made;
  }

  updateBead(actor: string, id: string, patch: UpdateBeadInput): Promise<Bead> {
    // Assigning work to a session counts as a claim by it.
    if (patch.assignee) {
      const holder = patch.assignee;
      return this.claimFor(holder, () => this.applyUpdate(actor, id, patch));
    }
    return this.applyUpdate(actor, id, patch);
  }

  private async applyUpdate(actor: string, id: string, patch: UpdateBeadInput): Promise<Bead> {
    const before = await this.store.get(id);
    const bead = await this.store.update(
      id,
      patch,
      this.rec(actor, (b: Bead) => {
        if (before.status !== 'closed' && b.status === 'closed') {
          return [
            CityOps.ev('bead.closed', id, { reason: b.close_reason }, b.close_reason || undefined),
          ];
        }
        const fields = Object.keys(patch);
        // The new values of the state fields, so the log replays to the store's state.
        const values: Record<string, unknown> = {};
        if (patch.status !== undefined) values.status = b.status;
        if (patch.assignee !== undefined) values.assignee = b.assignee;
        if (patch.priority !== undefined) values.priority = b.priority;
        if (before.attempt !== b.attempt) values.attempt = b.attempt;
        return [
          CityOps.ev(
            'bead.updated',
            id,
            { action: 'update', fields, ...values },
            `updated ${fields.join(', ')}`,
          ),
        ];
      }),
    );
    await this.written();
    return bead;
  }

  async closeBead(actor: string, id: string, reason?: string): Promise<CloseResult> {
    const result = await this.store.close(
      id,
      reason !== undefined ? { reason } : {},
      this.rec(actor, (r: CloseResult) =>
        r.changed
          ? [CityOps.ev('bead.closed', id, { reason: reason ?? '' }, reason || undefined)]
          : [],
      ),
    );
    await this.written();
    return result;
  }

  claimBead(actor: string, id: string, request: ClaimRequest = {}): Promise<Bead> {
    return this.claimFor(actor, async () => {
      const bead = await this.store.claim(
        id,
        actor,
        request,
        this.rec(actor, (b: Bead) => [CityOps.claimEvent(actor, b)]),
      );
      await this.written();
      return bead;
    });
  }

  claimNext(actor: string, query: ReadyQuery & ClaimRequest = {}): Promise<Bead | null> {
    return this.claimFor(actor, async () => {
      const rec = this.rec(actor, (b: Bead | null) => (b ? [CityOps.claimEvent(actor, b)] : []));
      const bead = await this.store.claimNextReady(actor, query, {
        ...rec,
        keep: (b) => b !== null,
      });
      if (bead) await this.written();
      else unusedRequestWrite(rec.request);
      return bead;
    });
  }

  private static claimEvent(actor: string, bead: Bead): Omit<OutboxEvent, 'actor'> {
    return CityOps.ev(
      'bead.updated',
      bead.id,
      { action: 'claim', assignee: actor, attempt: bead.attempt },
      `claimed by ${actor} (attempt ${bead.attempt})`,
    );
  }

  /** Release a claim; `changed` is false when the bead was not claimed (nothing recorded). */
  async unclaimBead(
    actor: string,
    id: string,
    request: UnclaimRequest = {},
  ): Promise<Bead & { changed: boolean }> {
    const before = await this.store.get(id);
    const changed = before.status === 'in_progress';
    const bead = await this.store.unclaim(
      id,
      {
        ...(request.force ? {} : { actor }),
        ...(request.attempt !== undefined ? { attempt: request.attempt } : {}),
      },
      this.rec(actor, () =>
        changed
          ? [
              CityOps.ev(
                'bead.updated',
                id,
                { action: 'unclaim', previous_assignee: before.assignee },
                `released by ${before.assignee}`,
              ),
            ]
          : [],
      ),
    );
    if (changed) await this.written();
    return { ...bead, changed };
  }

  /** Release every claim `holder` has (its session died). One event per bead. */
  async releaseClaimsOf(actor: string, holder: string, why: string): Promise<Bead[]> {
    const released = await this.store.releaseClaims(holder, {
      events: (beads) =>
        beads.map((b) => ({
          ...CityOps.ev(
            'bead.updated',
            b.id,
            { action: 'unclaim', previous_assignee: holder, reason: why },
            `released from ${holder}: ${why}`,
          ),
          actor,
        })),
    });
    if (released.length) await this.written();
    return released;
  }

  async setMetadata(actor: string, id: string, key: string, value: string): Promise<Bead> {
    const bead = await this.store.setMetadata(
      id,
      key,
      value,
      this.rec(actor, () => [
        CityOps.ev('bead.updated', id, { action: 'metadata', key, value }, `${key} = ${value}`),
      ]),
    );
    await this.written();
    return bead;
  }

  async addDependency(
    actor: string,
    issueId: string,
    dependsOnId: string,
    type = 'blocks',
  ): Promise<void> {
    await this.store.addDependency(
      issueId,
      dependsOnId,
      type,
      this.rec(actor, () => [
        CityOps.ev(
          'bead.updated',
          issueId,
          { action: 'dep_add', depends_on_id: dependsOnId, type },
          `depends on ${dependsOnId} (${type})`,
        ),
      ]),
    );
    await this.written();
  }

  async deleteBead(actor: string, id: string): Promise<void> {
    const bead = await this.store.get(id);
    await this.store.delete(
      id,
      this.rec(actor, () => [
        CityOps.ev('bead.deleted', id, { title: bead.title }, `deleted: ${bead.title}`),
      ]),
    );
    await this.written();
  }

  /** Remove a dependency; false (and nothing recorded) when there was none. */
  async removeDependency(actor: string, issueId: string, dependsOnId: string): Promise<boolean> {
    const had = (await this.store.listDependencies(issueId, 'down')).some(
      (d) => d.depends_on_id === dependsOnId,
    );
    if (!had) return false;
    await this.store.removeDependency(
      issueId,
      dependsOnId,
      this.rec(actor, () => [
        CityOps.ev(
          'bead.updated',
          issueId,
          { action: 'dep_remove', depends_on_id: dependsOnId },
          `no longer depends on ${dependsOnId}`,
        ),
      ]),
    );
    await this.written();
    return true;
  }
}
