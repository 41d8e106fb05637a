/**
 * Versioned schema migrations for the SQLite store. Each migration runs once,
 * in order, inside a transaction, at open. Never edit a released migration:
 * append a new one.
 */

export interface Migration {
  version: number;
  description: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'beads, labels, metadata, dependencies',
    sql: `
      CREATE TABLE beads (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        title TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('open','in_progress','closed')),
        issue_type TEXT NOT NULL,
        priority INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        closed_at INTEGER,
        close_reason TEXT NOT NULL DEFAULT '',
        assignee TEXT NOT NULL DEFAULT '',
        from_actor TEXT NOT NULL DEFAULT '',
        parent TEXT NOT NULL DEFAULT '',
        ref TEXT NOT NULL DEFAULT '',
        description TEXT NOT NULL DEFAULT '',
        claimed_at INTEGER,
        lease_expires_at INTEGER,
        attempt INTEGER NOT NULL DEFAULT 0,
        -- 1 when an unclosed blocking dependency (or a blocked parent) exists;
        -- maintained on every write that can change it, so ready is an index walk.
        blocked INTEGER NOT NULL DEFAULT 0,
        -- 1 for infrastructure types that are never ready work.
        infra INTEGER NOT NULL DEFAULT 0
      );
      CREATE INDEX beads_ready ON beads(priority, seq)
        WHERE status = 'open' AND blocked = 0 AND infra = 0;
      CREATE INDEX beads_status ON beads(status, seq);
      CREATE INDEX beads_assignee ON beads(assignee, status, seq);
      CREATE INDEX beads_parent ON beads(parent, seq) WHERE parent != '';
      CREATE INDEX beads_type ON beads(issue_type, seq);
      CREATE INDEX beads_lease ON beads(lease_expires_at) WHERE status = 'in_progress';

      CREATE TABLE labels (
        bead_seq INTEGER NOT NULL,
        label TEXT NOT NULL,
        PRIMARY KEY (bead_seq, label)
      ) WITHOUT ROWID;
      CREATE INDEX labels_by_label ON labels(label, bead_seq);

      CREATE TABLE metadata (
        bead_seq INTEGER NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (bead_seq, key)
      ) WITHOUT ROWID;
      CREATE INDEX metadata_by_value ON metadata(key, value, bead_seq);

      CREATE TABLE deps (
        issue_id TEXT NOT NULL,
        depends_on_id TEXT NOT NULL,
        type TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (issue_id, depends_on_id)
      ) WITHOUT ROWID;
      CREATE INDEX deps_up ON deps(depends_on_id, type);
    `,
  },
  {
    // One commit per change: events committed with their write, drained to
    // the event log; and the results of API requests' writes, for retries.
    version: 2,
    description: 'outbox (events committed with their write), request results (retries)',
    sql: `
      CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        event TEXT NOT NULL
      );
      CREATE TABLE requests (
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        n INTEGER NOT NULL,
        fp TEXT NOT NULL,
        result TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (scope, key, n)
      ) WITHOUT ROWID;
      CREATE INDEX requests_at ON requests(at);
    `,
  },
];
