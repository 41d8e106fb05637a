/**
 * CityClient: the one way code outside the city server touches a city.
 * Implemented in-process by LocalCity (holding the city lock) and, with the
 * API, over HTTP by RemoteCity. Every method acts as the client's `actor`;
 * every state change is recorded as an event.
 */
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

export interface CityClient {
  /** `local` (in-process) or `remote` (HTTP). */
  readonly kind: 'local' | 'remote';
  /** Who this client acts as: session name, agent name, or the human user. */
  readonly actor: string;
  /** City root directory (local) or API address (remote). */
  readonly where: string;

  createBead(input: CreateBeadInput): Promise<Bead>;
  getBead(id: string): Promise<Bead>;
  listBeads(query: ListQuery): Promise<Page<Bead>>;
  readyBeads(query?: ReadyQuery): Promise<Page<Bead>>;
  children(parentId: string, query?: { limit?: number; cursor?: string }): Promise<Page<Bead>>;
  beadCounts(): Promise<BeadCounts>;
  updateBead(id: string, patch: UpdateBeadInput): Promise<Bead>;
  closeBead(id: string, reason?: string): Promise<CloseResult>;
  /** Claim for this client's actor. */
  claimBead(id: string, request?: ClaimRequest): Promise<Bead>;
  /** Claim the first ready bead matching the query for this client's actor; null if none. */
  claimNext(query?: ReadyQuery & ClaimRequest): Promise<Bead | null>;
  unclaimBead(id: string, request?: UnclaimRequest): Promise<Bead>;
  addDependency(issueId: string, dependsOnId: string, type?: string): Promise<void>;
  removeDependency(issueId: string, dependsOnId: string): Promise<void>;
  listDependencies(id: string, direction: 'down' | 'up'): Promise<Dependency[]>;

  listEvents(query?: EventListQuery): Promise<EventPage>;
  latestEventSeq(): Promise<number>;
  watchEvents(afterSeq: number, options?: WatchOptions): AsyncIterable<GcEvent>;

  /** Release the lock, files and connections. */
  close(): Promise<void>;
}

/** The acting identity from the environment (sessions set GC_SESSION_NAME / GC_AGENT). */
export function actorFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return env.GC_SESSION_NAME || env.GC_AGENT || env.BD_ACTOR || env.USER || 'human';
}
