/**
 * CityOps: every bead operation a client can ask for, applied to the store
 * and recorded in the event log as one step, on behalf of an actor. The city
 * server runs these for API requests and LocalCity for the CLI, so an
 * operation behaves and is recorded the same way whichever path it took.
 */
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
  constructor(
    readonly store: Store,
    readonly events: EventLog,
    /** Called after every write (the server pokes its controller). */
    private readonly onWrite: () => void = () => undefined,
  ) {}

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

  async updateBead(actor: string, id: string, patch: UpdateBeadInput): Promise<Bead> {
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

  async claimBead(actor: string, id: string, request: ClaimRequest = {}): Promise<Bead> {
    const bead = await this.store.claim(id, actor, request);
    await this.emitClaim(actor, bead);
    return bead;
  }

  async claimNext(actor: string, query: ReadyQuery & ClaimRequest = {}): Promise<Bead | null> {
    const bead = await this.store.claimNextReady(actor, query);
    if (bead) await this.emitClaim(actor, bead);
    return bead;
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

  async unclaimBead(actor: string, id: string, request: UnclaimRequest = {}): Promise<Bead> {
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
    return bead;
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

  async removeDependency(actor: string, issueId: string, dependsOnId: string): Promise<void> {
    await this.store.removeDependency(issueId, dependsOnId);
    await this.emit(
      actor,
      'bead.updated',
      issueId,
      { action: 'dep_remove', depends_on_id: dependsOnId },
      `no longer depends on ${dependsOnId}`,
    );
  }
}
