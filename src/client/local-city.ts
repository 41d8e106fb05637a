/**
 * LocalCity: a CityClient that opens the city's store and event log in this
 * process, under the city lock. Each mutation is applied to the store and
 * then recorded in the event log.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UnsupportedError, derivePrefix } from '../core/index.js';
import { loadCityConfig, ms, type LoadedConfig } from '../config/index.js';
import {
  JsonlEventLog,
  MemoryEventLog,
  type EventListQuery,
  type EventLog,
  type EventPage,
  type GcEvent,
  type WatchOptions,
} from '../events/index.js';
import {
  MemoryStore,
  SqliteStore,
  type Bead,
  type BeadCounts,
  type CloseResult,
  type CreateBeadInput,
  type Dependency,
  type ListQuery,
  type Page,
  type ReadyQuery,
  type Store,
  type UpdateBeadInput,
} from '../store/index.js';
import {
  actorFromEnv,
  type ClaimRequest,
  type CityClient,
  type UnclaimRequest,
} from './city-client.js';
import { CityLock } from './lock.js';

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

  private constructor(
    readonly actor: string,
    readonly where: string,
    readonly loaded: LoadedConfig,
    private readonly store: Store,
    private readonly events: EventLog,
    private readonly lock: CityLock | undefined,
  ) {}

  static async open(options: LocalCityOptions): Promise<LocalCity> {
    const env = options.env ?? process.env;
    const loaded = await loadCityConfig(join(options.root, 'city.toml'), env);
    const gc = join(loaded.root, '.gc');
    const readonly = options.readonly ?? false;
    const lock = readonly
      ? undefined
      : await CityLock.acquire(join(gc, 'city.lock'), {
          role: 'cli',
          ...(options.lockWaitMs !== undefined ? { waitMs: options.lockWaitMs } : {}),
          ...(options.command ? { command: options.command } : {}),
        });
    try {
      const { config } = loaded;
      const prefix = config.workspace.prefix ?? derivePrefix(config.workspace.name);
      let store: Store;
      const bp = config.beads.provider || 'sqlite';
      if (bp === 'sqlite') {
        const dbPath = join(gc, 'beads.db');
        store = new SqliteStore({
          path: dbPath,
          // A follower without the lock must never migrate behind the holder's back.
          readonly: readonly && existsSync(dbPath),
          prefix,
          defaultLeaseMs: ms(config.beads.claim_lease),
          durability: config.beads.durability,
        });
      } else if (bp === 'memory') {
        store = new MemoryStore({ prefix, defaultLeaseMs: ms(config.beads.claim_lease) });
      } else {
        throw new UnsupportedError(`beads provider "${bp}" is not available in this build`, {
          fix: 'use [beads] provider = "sqlite" (the default)',
        });
      }
      let events: EventLog;
      const ep = config.events.provider || 'jsonl';
      if (ep === 'jsonl') {
        events = await JsonlEventLog.open({
          path: join(gc, 'events.jsonl'),
          readonly,
          maxSegmentBytes: config.events.max_segment_mb * 1024 * 1024,
          retainSegments: config.events.retain_segments,
        });
      } else if (ep === 'memory') {
        events = new MemoryEventLog();
      } else {
        await store.dispose();
        throw new UnsupportedError(`events provider "${ep}" is not available in this build`, {
          fix: 'use [events] provider = "jsonl" (the default)',
        });
      }
      return new LocalCity(
        options.actor ?? actorFromEnv(env),
        loaded.root,
        loaded,
        store,
        events,
        lock,
      );
    } catch (err) {
      await lock?.release();
      throw err;
    }
  }

  private async emit(
    type: string,
    subject: string,
    payload?: unknown,
    message?: string,
  ): Promise<void> {
    await this.events.record({
      type,
      actor: this.actor,
      subject,
      ...(payload !== undefined ? { payload } : {}),
      ...(message !== undefined ? { message } : {}),
    });
  }

  async createBead(input: CreateBeadInput): Promise<Bead> {
    const bead = await this.store.create({ from: this.actor, ...input });
    await this.emit(
      'bead.created',
      bead.id,
      {
        title: bead.title,
        type: bead.issue_type,
        priority: bead.priority,
        parent: bead.parent || undefined,
      },
      bead.title,
    );
    return bead;
  }

  getBead(id: string): Promise<Bead> {
    return this.store.get(id);
  }

  listBeads(query: ListQuery): Promise<Page<Bead>> {
    return this.store.list(query);
  }

  readyBeads(query: ReadyQuery = {}): Promise<Page<Bead>> {
    return this.store.ready(query);
  }

  children(parentId: string, query: { limit?: number; cursor?: string } = {}): Promise<Page<Bead>> {
    return this.store.children(parentId, query);
  }

  beadCounts(): Promise<BeadCounts> {
    return this.store.counts();
  }

  async updateBead(id: string, patch: UpdateBeadInput): Promise<Bead> {
    const before = await this.store.get(id);
    const bead = await this.store.update(id, patch);
    if (before.status !== 'closed' && bead.status === 'closed') {
      await this.emit(
        'bead.closed',
        id,
        { reason: bead.close_reason },
        bead.close_reason || undefined,
      );
    } else {
      const fields = Object.keys(patch);
      await this.emit(
        'bead.updated',
        id,
        { action: 'update', fields },
        `updated ${fields.join(', ')}`,
      );
    }
    return bead;
  }

  async closeBead(id: string, reason?: string): Promise<CloseResult> {
    const result = await this.store.close(id, reason !== undefined ? { reason } : {});
    if (result.changed)
      await this.emit('bead.closed', id, { reason: reason ?? '' }, reason || undefined);
    return result;
  }

  async claimBead(id: string, request: ClaimRequest = {}): Promise<Bead> {
    const bead = await this.store.claim(id, this.actor, request);
    await this.emitClaim(bead);
    return bead;
  }

  async claimNext(query: ReadyQuery & ClaimRequest = {}): Promise<Bead | null> {
    const bead = await this.store.claimNextReady(this.actor, query);
    if (bead) await this.emitClaim(bead);
    return bead;
  }

  private emitClaim(bead: Bead): Promise<void> {
    return this.emit(
      'bead.updated',
      bead.id,
      { action: 'claim', assignee: this.actor, attempt: bead.attempt },
      `claimed by ${this.actor} (attempt ${bead.attempt})`,
    );
  }

  async unclaimBead(id: string, request: UnclaimRequest = {}): Promise<Bead> {
    const before = await this.store.get(id);
    const bead = await this.store.unclaim(id, {
      ...(request.force ? {} : { actor: this.actor }),
      ...(request.attempt !== undefined ? { attempt: request.attempt } : {}),
    });
    if (before.status === 'in_progress') {
      await this.emit(
        'bead.updated',
        id,
        { action: 'unclaim', previous_assignee: before.assignee },
        `released by ${before.assignee}`,
      );
    }
    return bead;
  }

  async addDependency(issueId: string, dependsOnId: string, type = 'blocks'): Promise<void> {
    await this.store.addDependency(issueId, dependsOnId, type);
    await this.emit(
      'bead.updated',
      issueId,
      { action: 'dep_add', depends_on_id: dependsOnId, type },
      `depends on ${dependsOnId} (${type})`,
    );
  }

  async removeDependency(issueId: string, dependsOnId: string): Promise<void> {
    await this.store.removeDependency(issueId, dependsOnId);
    await this.emit(
      'bead.updated',
      issueId,
      { action: 'dep_remove', depends_on_id: dependsOnId },
      `no longer depends on ${dependsOnId}`,
    );
  }

  listDependencies(id: string, direction: 'down' | 'up'): Promise<Dependency[]> {
    return this.store.listDependencies(id, direction);
  }

  listEvents(query: EventListQuery = {}): Promise<EventPage> {
    return this.events.list(query);
  }

  latestEventSeq(): Promise<number> {
    return this.events.latestSeq();
  }

  watchEvents(afterSeq: number, options: WatchOptions = {}): AsyncIterable<GcEvent> {
    return this.events.watch(afterSeq, options);
  }

  async close(): Promise<void> {
    try {
      await this.events.close();
      await this.store.dispose();
    } finally {
      await this.lock?.release();
    }
  }
}
