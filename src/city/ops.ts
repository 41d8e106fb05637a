/**
 * CityOps: every bead operation a client can ask for, applied to the store
 * and recorded in the event log as one step, on behalf of an actor. The city
 * server runs these for API requests and LocalCity for the CLI, so an
 * operation behaves and is recorded the same way whichever path it took.
 */
import { ConflictError } from '../core/index.js';
import type { EventLog } from '../events/index.js';
import type {
  Bead,
  CloseResult,
  CreateBeadInput,
  ReadyQuery,
  Store,
  UpdateBeadInput,
} from '../store/index.js';

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

  constructor(
    readonly store: Store,
    readonly events: EventLog,
    /** Called after every write (the server pokes its controller). */
    private readonly onWrite: () => void = () => undefined,
  ) {}

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

  private async emit(
    actor: string,
    type: string,
    subject: string,
    payload?: unknown,
    message?: string,
  ): Promise<void> {
    await this.events.record({
      type,
      actor,
      subject,
      ...(payload !== undefined ? { payload } : {}),
      ...(message !== undefined ? { message } : {}),
    });
    this.onWrite();
  }

  async createBead(actor: string, input: CreateBeadInput): Promise<Bead> {
    const bead = await this.store.create({ from: actor, ...input });
    await this.emit(
      actor,
      'bead.created',
      bead.id,
      {
        title: bead.title,
        type: bead.issue_type,
        priority: bead.priority,
        parent: bead.parent || undefined,
        ...(bead.status !== 'open' ? { status: bead.status } : {}),
        ...(bead.assignee ? { assignee: bead.assignee } : {}),
      },
      bead.title,
    );
    return bead;
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
    const bead = await this.store.update(id, patch);
    if (before.status !== 'closed' && bead.status === 'closed') {
      await this.emit(
        actor,
        'bead.closed',
        id,
        { reason: bead.close_reason },
        bead.close_reason || undefined,
      );
    } else {
      const fields = Object.keys(patch);
      // The new values of the state fields, so the log replays to the store's state.
      const values: Record<string, unknown> = {};
      if (patch.status !== undefined) values.status = bead.status;
      if (patch.assignee !== undefined) values.assignee = bead.assignee;
      if (patch.priority !== undefined) values.priority = bead.priority;
      if (before.attempt !== bead.attempt) values.attempt = bead.attempt;
      await this.emit(
        actor,
        'bead.updated',
        id,
        { action: 'update', fields, ...values },
        `updated ${fields.join(', ')}`,
      );
    }
    return bead;
  }

  async closeBead(actor: string, id: string, reason?: string): Promise<CloseResult> {
    const result = await this.store.close(id, reason !== undefined ? { reason } : {});
    if (result.changed) {
      await this.emit(actor, 'bead.closed', id, { reason: reason ?? '' }, reason || undefined);
    }
    return result;
  }

  claimBead(actor: string, id: string, request: ClaimRequest = {}): Promise<Bead> {
    return this.claimFor(actor, async () => {
      const bead = await this.store.claim(id, actor, request);
      await this.emitClaim(actor, bead);
      return bead;
    });
  }

  claimNext(actor: string, query: ReadyQuery & ClaimRequest = {}): Promise<Bead | null> {
    return this.claimFor(actor, async () => {
      const bead = await this.store.claimNextReady(actor, query);
      if (bead) await this.emitClaim(actor, bead);
      return bead;
    });
  }

  private emitClaim(actor: string, bead: Bead): Promise<void> {
    return this.emit(
      actor,
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
    const bead = await this.store.unclaim(id, {
      ...(request.force ? {} : { actor }),
      ...(request.attempt !== undefined ? { attempt: request.attempt } : {}),
    });
    if (before.status === 'in_progress') {
      await this.emit(
        actor,
        'bead.updated',
        id,
        { action: 'unclaim', previous_assignee: before.assignee },
        `released by ${before.assignee}`,
      );
    }
    return { ...bead, changed: before.status === 'in_progress' };
  }

  /** Release every claim `holder` has (its session died). One event per bead. */
  async releaseClaimsOf(actor: string, holder: string, why: string): Promise<Bead[]> {
    const released = await this.store.releaseClaims(holder);
    for (const b of released) {
      await this.emit(
        actor,
        'bead.updated',
        b.id,
        { action: 'unclaim', previous_assignee: holder, reason: why },
        `released from ${holder}: ${why}`,
      );
    }
    return released;
  }

  async setMetadata(actor: string, id: string, key: string, value: string): Promise<Bead> {
    const bead = await this.store.setMetadata(id, key, value);
    await this.emit(
      actor,
      'bead.updated',
      id,
      { action: 'metadata', key, value },
      `${key} = ${value}`,
    );
    return bead;
  }

  async addDependency(
    actor: string,
    issueId: string,
    dependsOnId: string,
    type = 'blocks',
  ): Promise<void> {
    await this.store.addDependency(issueId, dependsOnId, type);
    await this.emit(
      actor,
      'bead.updated',
      issueId,
      { action: 'dep_add', depends_on_id: dependsOnId, type },
      `depends on ${dependsOnId} (${type})`,
    );
  }

  async deleteBead(actor: string, id: string): Promise<void> {
    const bead = await this.store.get(id);
    await this.store.delete(id);
    await this.emit(actor, 'bead.deleted', id, { title: bead.title }, `deleted: ${bead.title}`);
  }

  /** Remove a dependency; false (and nothing recorded) when there was none. */
  async removeDependency(actor: string, issueId: string, dependsOnId: string): Promise<boolean> {
    const had = (await this.store.listDependencies(issueId, 'down')).some(
      (d) => d.depends_on_id === dependsOnId,
    );
    if (!had) return false;
    await this.store.removeDependency(issueId, dependsOnId);
    await this.emit(
      actor,
      'bead.updated',
      issueId,
      { action: 'dep_remove', depends_on_id: dependsOnId },
      `no longer depends on ${dependsOnId}`,
    );
    return true;
  }
}
