/** A new bead row in SQLite, and the Bead it is (built from what was written, not read back). */
import type { Statements } from './sqlite-rows.js';
import type { Bead } from './types.js';
import { isInfraType, iso, type normalizeCreate } from './validate.js';

type Normalized = ReturnType<typeof normalizeCreate>;

/** SQLite's BINARY collation: UTF-8 byte order (differs from UTF-16 order above U+FFFF). */
function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Insert the bead's row; returns its seq. */
export function insertBead(sql: Statements, id: string, n: Normalized, now: number): number {
  const info = sql
    .stmt(
      `INSERT INTO beads (id, title, status, issue_type, priority, created_at, updated_at,
       closed_at, assignee, from_actor, parent, ref, description, infra)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .run(
      id,
      n.title,
      n.status,
      n.type,
      n.priority,
      now,
      now,
      n.status === 'closed' ? now : null,
      n.assignee,
      n.from,
      n.parent,
      n.ref,
      n.description,
      isInfraType(n.type) ? 1 : 0,
    );
  return Number(info.lastInsertRowid);
}

export function freshBead(id: string, n: Normalized, now: number): Bead {
  const at = iso(now);
  return {
    id,
    title: n.title,
    status: n.status,
    issue_type: n.type,
    priority: n.priority,
    created_at: at,
    updated_at: at,
    closed_at: n.status === 'closed' ? at : null,
    close_reason: '',
    assignee: n.assignee,
    from: n.from,
    parent: n.parent,
    ref: n.ref,
    description: n.description,
    labels: [...new Set(n.labels)].sort(byBytes),
    metadata: { ...n.metadata },
    dependencies: [],
    claimed_at: null,
    lease_expires_at: null,
    attempt: 0,
  };
}
