/**
 * LocalCity: a CityClient that opens the city's store and event log in this
 * process, under the city lock. Operations go through CityOps, exactly as
 * the city server runs them.
 */
import type { LoadedConfig } from '../config/index.js';
import { CityOps, openCityState, type CityState } from '../city/index.js';
import { hook, sling, type HookResult, type SlingResult } from '../dispatch/index.js';
import type { EventListQuery, EventPage, GcEvent, WatchOptions } from '../events/index.js';
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
  type UnclaimRequest,
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

  private constructor(
    readonly actor: string,
    private readonly state: CityState,
  ) {
    this.where = state.loaded.root;
    this.loaded = state.loaded;
    this.ops = new CityOps(state.store, state.events);
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
    return new LocalCity(options.actor ?? actorFromEnv(options.env ?? process.env), state);
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

  claimNext(query: ReadyQuery & ClaimRequest = {}): Promise<Bead | null> {
    return this.ops.claimNext(this.actor, query);
  }

  unclaimBead(id: string, request: UnclaimRequest = {}): Promise<Bead> {
    return this.ops.unclaimBead(this.actor, id, request);
  }

  addDependency(issueId: string, dependsOnId: string, type = 'blocks'): Promise<void> {
    return this.ops.addDependency(this.actor, issueId, dependsOnId, type);
  }

  removeDependency(issueId: string, dependsOnId: string): Promise<void> {
    return this.ops.removeDependency(this.actor, issueId, dependsOnId);
  }

  listDependencies(id: string, direction: 'down' | 'up'): Promise<Dependency[]> {
    return this.state.store.listDependencies(id, direction);
  }

  async sling(
    target: string,
    beadId: string,
    options: { nudge?: boolean } = {},
  ): Promise<SlingResult> {
    const result = await sling(
      this.ops,
      this.actor,
      target,
      beadId,
      this.loaded.config.agent.map((a) => a.name),
    );
    // Without a running server there is no session to nudge; the controller
    // sees the route when it starts.
    void options;
    return result;
  }

  hook(agent?: string, limit?: number): Promise<HookResult> {
    return hook(this.ops, this.actor, agent, limit);
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

  close(): Promise<void> {
    return this.state.close();
  }
}
