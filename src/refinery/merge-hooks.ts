import type { MergeRequest } from './queue.js';

/** What the engine tells the rest of the city; implemented over store, mail and events. */
export interface MergeHooks {
  record(
    type: string,
    mr: MergeRequest,
    payload: Record<string, unknown>,
    message: string,
  ): Promise<void>;
  merged(mr: MergeRequest): Promise<void>;
  /** Returns the id of the conflict bead filed for the author. */
  conflicted(mr: MergeRequest, files: string[]): Promise<string>;
  gateFailed(mr: MergeRequest, gate: string, tail: string): Promise<void>;
  /**
   * Before a request naming a bead is queued: throws (NotFoundError) when
   * there is no such bead, so a typo is refused instead of merged with a
   * close that fails later. Absent: beads are not checked.
   */
  checkBead?(bead: string): Promise<void>;
  /** The files a request for `bead` changes (for conflict-aware claiming: gc.touched). */
  touched?(bead: string, files: string[]): Promise<void>;
  /** Whether a bead is closed (a conflict bead: its request is queued again). */
  beadClosed?(bead: string): Promise<boolean>;
}
