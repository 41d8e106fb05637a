/**
 * Replaying the event log: the state of every bead as its `bead.*` events
 * say, with no store. Every bead transition the city makes (create, claim,
 * unclaim, update, close, delete) records one event carrying the new state
 * fields, so a replay must agree with the store; a disagreement means a
 * write that skipped the log. Used by the end-to-end tests and by anyone
 * auditing a city from its log alone.
 */
import type { GcEvent } from '../events/index.js';
import type { BeadStatus } from '../store/index.js';

export interface ReplayedBead {
  id: string;
  status: BeadStatus;
  assignee: string;
  /** Claim attempts (the fencing counter). */
  attempt: number;
  /** How many times it went to closed. */
  closes: number;
  deleted: boolean;
}

/** Why a log cannot be replayed: an event that does not say what changed. */
export class ReplayError extends Error {}

type Payload = Record<string, unknown>;

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

export function replayBeads(events: Iterable<GcEvent>): Map<string, ReplayedBead> {
  const beads = new Map<string, ReplayedBead>();
  const get = (e: GcEvent): ReplayedBead => {
    const b = e.subject ? beads.get(e.subject) : undefined;
    if (!b)
      throw new ReplayError(`event ${e.seq} (${e.type}) is about ${e.subject}, never created`);
    return b;
  };
  for (const e of events) {
    if (!e.type.startsWith('bead.')) continue;
    const p = (e.payload ?? {}) as Payload;
    switch (e.type) {
      case 'bead.created': {
        if (!e.subject) throw new ReplayError(`event ${e.seq}: bead.created without a subject`);
        const status = (str(p.status) ?? 'open') as BeadStatus;
        beads.set(e.subject, {
          id: e.subject,
          status,
          assignee: str(p.assignee) ?? '',
          attempt: 0,
          closes: status === 'closed' ? 1 : 0,
          deleted: false,
        });
        break;
      }
      case 'bead.closed': {
        const b = get(e);
        b.status = 'closed';
        b.closes++;
        break;
      }
      case 'bead.deleted':
        get(e).deleted = true;
        break;
      case 'bead.updated': {
        const b = get(e);
        switch (p.action) {
          case 'claim':
            b.status = 'in_progress';
            b.assignee = str(p.assignee) ?? e.actor;
            if (typeof p.attempt === 'number') b.attempt = p.attempt;
            break;
          case 'unclaim':
            b.status = 'open';
            b.assignee = '';
            break;
          case 'update': {
            const fields = Array.isArray(p.fields) ? (p.fields as string[]) : [];
            for (const f of ['status', 'assignee'] as const) {
              if (fields.includes(f) && p[f] === undefined) {
                throw new ReplayError(`event ${e.seq}: update of ${f} without its new value`);
              }
            }
            if (p.status !== undefined) {
              const next = p.status as BeadStatus;
              if (next === 'closed' && b.status !== 'closed') b.closes++;
              b.status = next;
            }
            if (typeof p.assignee === 'string') b.assignee = p.assignee;
            if (typeof p.attempt === 'number') b.attempt = p.attempt;
            break;
          }
          default:
            break; // metadata and dependencies: not part of the replayed state
        }
        break;
      }
      default:
        break;
    }
  }
  return beads;
}
