/**
 * Versioned schema of the store on a database server, per dialect. Each
 * migration runs once, in order, under a database-wide lock, so several
 * processes starting together migrate once. Never edit a released
 * migration: append one.
 *
 * Text compares and sorts by bytes on both (PostgreSQL `COLLATE "C"`,
 * MySQL `utf8mb4_bin`), as on SQLite: ids and labels are case-sensitive
 * and ordered the same everywhere. MySQL cannot index long text whole, so
 * indexed columns are VARCHARs sized from the store's limits (types.ts).
 */
import type { Dialect } from './db.js';

export interface SqlMigration {
  version: number;
  description: string;
  statements: Record<Dialect, string[]>;
}

const PG_TEXT = 'TEXT COLLATE "C"';
export const MY_TABLE = 'ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin';

export const SQL_MIGRATIONS: readonly SqlMigration[] = [
  {
    version: 1,
    description: 'beads, labels, metadata, dependencies, outbox, request results',
    statements: {
      postgres: [
        `CREATE TABLE beads (
          seq BIGSERIAL PRIMARY KEY,
          id ${PG_TEXT} NOT NULL UNIQUE,
          title ${PG_TEXT} NOT NULL,
          status ${PG_TEXT} NOT NULL CHECK (status IN ('open','in_progress','closed')),
          issue_type ${PG_TEXT} NOT NULL,
          priority INTEGER NOT NULL,
          created_at BIGINT NOT NULL,
          updated_at BIGINT NOT NULL,
          closed_at BIGINT,
          close_reason ${PG_TEXT} NOT NULL DEFAULT '',
          assignee ${PG_TEXT} NOT NULL DEFAULT '',
          from_actor ${PG_TEXT} NOT NULL DEFAULT '',
          parent ${PG_TEXT} NOT NULL DEFAULT '',
          ref ${PG_TEXT} NOT NULL DEFAULT '',
          description ${PG_TEXT} NOT NULL DEFAULT '',
          claimed_at BIGINT,
          lease_expires_at BIGINT,
          attempt INTEGER NOT NULL DEFAULT 0,
          blocked SMALLINT NOT NULL DEFAULT 0,
          infra SMALLINT NOT NULL DEFAULT 0
        )`,
        `CREATE INDEX beads_ready ON beads(priority, seq)
          WHERE status = 'open' AND blocked = 0 AND infra = 0`,
        'CREATE INDEX beads_status ON beads(status, seq)',
        'CREATE INDEX beads_assignee ON beads(assignee, status, seq)',
        "CREATE INDEX beads_parent ON beads(parent, seq) WHERE parent <> ''",
        'CREATE INDEX beads_type ON beads(issue_type, seq)',
        "CREATE INDEX beads_lease ON beads(lease_expires_at) WHERE status = 'in_progress'",
        `CREATE TABLE labels (
          bead_seq BIGINT NOT NULL,
          label ${PG_TEXT} NOT NULL,
          PRIMARY KEY (bead_seq, label)
        )`,
        'CREATE INDEX labels_by_label ON labels(label, bead_seq)',
        `CREATE TABLE metadata (
          bead_seq BIGINT NOT NULL,
          k ${PG_TEXT} NOT NULL,
          v ${PG_TEXT} NOT NULL,
          PRIMARY KEY (bead_seq, k)
        )`,
        // Values are up to 64 KiB, past a B-tree entry's limit: index a hash of long ones.
        'CREATE INDEX metadata_by_value ON metadata(k, md5(v), bead_seq)',
        `CREATE TABLE deps (
          issue_id ${PG_TEXT} NOT NULL,
          depends_on_id ${PG_TEXT} NOT NULL,
          type ${PG_TEXT} NOT NULL,
          created_at BIGINT NOT NULL,
          PRIMARY KEY (issue_id, depends_on_id)
        )`,
        'CREATE INDEX deps_up ON deps(depends_on_id, type)',
        `CREATE TABLE outbox (
          id BIGSERIAL PRIMARY KEY,
          event ${PG_TEXT} NOT NULL
        )`,
        `CREATE TABLE requests (
          scope ${PG_TEXT} NOT NULL,
          rkey ${PG_TEXT} NOT NULL,
          n INTEGER NOT NULL,
          fp ${PG_TEXT} NOT NULL,
          result ${PG_TEXT} NOT NULL,
          at BIGINT NOT NULL,
          PRIMARY KEY (scope, rkey, n)
        )`,
        'CREATE INDEX requests_at ON requests(at)',
      ],
      mysql: [
        `CREATE TABLE beads (
          seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
          id VARCHAR(64) NOT NULL,
          title TEXT NOT NULL,
          status VARCHAR(16) NOT NULL,
          issue_type VARCHAR(64) NOT NULL,
          priority INT NOT NULL,
          created_at BIGINT NOT NULL,
          updated_at BIGINT NOT NULL,
          closed_at BIGINT NULL,
          close_reason TEXT NOT NULL,
          assignee VARCHAR(256) NOT NULL DEFAULT '',
          from_actor VARCHAR(256) NOT NULL DEFAULT '',
          parent VARCHAR(64) NOT NULL DEFAULT '',
          ref TEXT NOT NULL,
          description MEDIUMTEXT NOT NULL,
          claimed_at BIGINT NULL,
          lease_expires_at BIGINT NULL,
          attempt INT NOT NULL DEFAULT 0,
          blocked TINYINT NOT NULL DEFAULT 0,
          infra TINYINT NOT NULL DEFAULT 0,
          UNIQUE KEY beads_id (id),
          KEY beads_ready (status, blocked, infra, priority, seq),
          KEY beads_status (status, seq),
          KEY beads_assignee (assignee, status, seq),
          KEY beads_parent (parent, seq),
          KEY beads_type (issue_type, seq),
          KEY beads_lease (status, lease_expires_at)
        ) ${MY_TABLE}`,
        `CREATE TABLE labels (
          bead_seq BIGINT NOT NULL,
          label VARCHAR(256) NOT NULL,
          PRIMARY KEY (bead_seq, label),
          KEY labels_by_label (label, bead_seq)
        ) ${MY_TABLE}`,
        `CREATE TABLE metadata (
          bead_seq BIGINT NOT NULL,
          k VARCHAR(256) NOT NULL,
          v MEDIUMTEXT NOT NULL,
          PRIMARY KEY (bead_seq, k),
          KEY metadata_by_value (k, v(400), bead_seq)
        ) ${MY_TABLE}`,
        `CREATE TABLE deps (
          issue_id VARCHAR(64) NOT NULL,
          depends_on_id VARCHAR(64) NOT NULL,
          type VARCHAR(64) NOT NULL,
          created_at BIGINT NOT NULL,
          PRIMARY KEY (issue_id, depends_on_id),
          KEY deps_up (depends_on_id, type)
        ) ${MY_TABLE}`,
        `CREATE TABLE outbox (
          id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
          event LONGTEXT NOT NULL
        ) ${MY_TABLE}`,
        `CREATE TABLE requests (
          scope VARCHAR(255) NOT NULL,
          rkey VARCHAR(255) NOT NULL,
          n INT NOT NULL,
          fp VARCHAR(255) NOT NULL,
          result LONGTEXT NOT NULL,
          at BIGINT NOT NULL,
          PRIMARY KEY (scope, rkey, n),
          KEY requests_at (at)
        ) ${MY_TABLE}`,
      ],
    },
  },
  {
    // Outbox ids in commit order. A sequence or AUTO_INCREMENT hands out ids
    // at insert time, so a transaction that started earlier could commit
    // its events below ids a drainer had already passed: events lost or
    // out of order. The counter row is taken as a write's last statement
    // and held until its commit, so ids grow in commit order, without gaps.
    version: 2,
    description: 'outbox ids in commit order (a counter row)',
    statements: {
      postgres: [
        'CREATE TABLE outbox_seq (id INTEGER PRIMARY KEY, next BIGINT NOT NULL)',
        'INSERT INTO outbox_seq (id, next) SELECT 1, COALESCE(MAX(id), 0) FROM outbox',
      ],
      mysql: [
        `CREATE TABLE outbox_seq (id INT PRIMARY KEY, next BIGINT NOT NULL) ${MY_TABLE}`,
        'INSERT INTO outbox_seq (id, next) SELECT 1, COALESCE(MAX(id), 0) FROM outbox',
      ],
    },
  },
  {
    // The event log in the city's database. seq comes from a counter row
    // taken as a write's last statement and held until its commit (as the
    // outbox ids of v2), so seqs are gap-free and in commit order: a reader
    // that has seen seq n has seen every seq below it. A store write inserts
    // its events here in its own transaction. Actor and subject are free
    // text: their indexes cover the first 128 (PostgreSQL) or 191 (MySQL)
    // characters and the query checks the whole value.
    version: 3,
    description: 'event log (events, and its seq counter)',
    statements: {
      postgres: [
        `CREATE TABLE events (
          seq BIGINT PRIMARY KEY,
          type ${PG_TEXT} NOT NULL,
          ts TEXT NOT NULL,
          ts_ms BIGINT NOT NULL,
          actor ${PG_TEXT} NOT NULL,
          subject ${PG_TEXT},
          message TEXT,
          payload TEXT
        )`,
        'CREATE INDEX events_type ON events(type, seq)',
        'CREATE INDEX events_actor ON events(left(actor, 128), seq)',
        'CREATE INDEX events_subject ON events(left(subject, 128), seq) WHERE subject IS NOT NULL',
        'CREATE INDEX events_ts ON events(ts_ms)',
        'CREATE TABLE event_seq (id INTEGER PRIMARY KEY, next BIGINT NOT NULL)',
        'INSERT INTO event_seq (id, next) VALUES (1, 0)',
      ],
      mysql: [
        `CREATE TABLE events (
          seq BIGINT NOT NULL PRIMARY KEY,
          type VARCHAR(128) NOT NULL,
          ts TEXT NOT NULL,
          ts_ms BIGINT NOT NULL,
          actor TEXT NOT NULL,
          subject TEXT NULL,
          message MEDIUMTEXT NULL,
          payload MEDIUMTEXT NULL,
          KEY events_type (type, seq),
          KEY events_actor (actor(191), seq),
          KEY events_subject (subject(191), seq),
          KEY events_ts (ts_ms)
        ) ${MY_TABLE}`,
        `CREATE TABLE event_seq (id INT PRIMARY KEY, next BIGINT NOT NULL) ${MY_TABLE}`,
        'INSERT INTO event_seq (id, next) VALUES (1, 0)',
      ],
    },
  },
  {
    // The API's idempotency records (were .gc/api.db): shared by every server.
    version: 4,
    description: 'API idempotency records',
    statements: {
      postgres: [
        `CREATE TABLE idempotency (
          scope ${PG_TEXT} NOT NULL,
          ikey ${PG_TEXT} NOT NULL,
          fp ${PG_TEXT} NOT NULL,
          status INTEGER NOT NULL DEFAULT 0,
          body TEXT,
          at BIGINT NOT NULL,
          PRIMARY KEY (scope, ikey)
        )`,
        'CREATE INDEX idempotency_at ON idempotency(at)',
      ],
      mysql: [
        `CREATE TABLE idempotency (
          scope VARCHAR(64) NOT NULL,
          ikey VARCHAR(255) NOT NULL,
          fp VARCHAR(128) NOT NULL,
          status INT NOT NULL DEFAULT 0,
          body LONGTEXT NULL,
          at BIGINT NOT NULL,
          PRIMARY KEY (scope, ikey),
          KEY idempotency_at (at)
        ) ${MY_TABLE}`,
      ],
    },
  },
  {
    // Agent runs (were .gc/api.db): every server knows which sessions are runs.
    version: 5,
    description: 'agent runs',
    statements: {
      postgres: [
        `CREATE TABLE runs (
          seq BIGSERIAL PRIMARY KEY,
          id ${PG_TEXT} NOT NULL UNIQUE,
          session ${PG_TEXT} NOT NULL,
          template ${PG_TEXT} NOT NULL,
          owner ${PG_TEXT} NOT NULL,
          owner_key ${PG_TEXT} NOT NULL,
          owner_kind ${PG_TEXT} NOT NULL,
          state ${PG_TEXT} NOT NULL,
          exit_code INTEGER,
          error TEXT NOT NULL DEFAULT '',
          created_at ${PG_TEXT} NOT NULL,
          ended_at ${PG_TEXT}
        )`,
        'CREATE INDEX runs_state ON runs(state)',
        'CREATE INDEX runs_owner ON runs(owner_key, seq)',
      ],
      mysql: [
        `CREATE TABLE runs (
          seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
          id VARCHAR(64) NOT NULL,
          session VARCHAR(128) NOT NULL,
          template VARCHAR(128) NOT NULL,
          owner VARCHAR(256) NOT NULL,
          owner_key VARCHAR(64) NOT NULL,
          owner_kind VARCHAR(16) NOT NULL,
          state VARCHAR(16) NOT NULL,
          exit_code INT NULL,
          error TEXT NOT NULL,
          created_at VARCHAR(40) NOT NULL,
          ended_at VARCHAR(40) NULL,
          UNIQUE KEY runs_id (id),
          KEY runs_state (state),
          KEY runs_owner (owner_key, seq)
        ) ${MY_TABLE}`,
      ],
    },
  },
  {
    // API keys (were .gc/auth.db) and the server secret their HMACs are made
    // with (was .gc/server.secret): every server verifies the same keys.
    version: 6,
    description: 'API keys and the server secret',
    statements: {
      postgres: [
        `CREATE TABLE api_keys (
          seq BIGSERIAL PRIMARY KEY,
          key_id ${PG_TEXT} NOT NULL UNIQUE,
          kind ${PG_TEXT} NOT NULL CHECK (kind IN ('admin','operator','agent')),
          name ${PG_TEXT} NOT NULL,
          owner ${PG_TEXT} NOT NULL DEFAULT '',
          max_sessions INTEGER NOT NULL DEFAULT 0,
          webhook_url TEXT NOT NULL DEFAULT '',
          hmac ${PG_TEXT} NOT NULL,
          created_at ${PG_TEXT} NOT NULL,
          revoked_at ${PG_TEXT}
        )`,
        'CREATE INDEX api_keys_by_name ON api_keys(kind, name) WHERE revoked_at IS NULL',
        `CREATE TABLE gc_secrets (name ${PG_TEXT} PRIMARY KEY, value TEXT NOT NULL)`,
      ],
      mysql: [
        `CREATE TABLE api_keys (
          seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
          key_id VARCHAR(32) NOT NULL,
          kind VARCHAR(16) NOT NULL,
          name VARCHAR(128) NOT NULL,
          owner VARCHAR(128) NOT NULL DEFAULT '',
          max_sessions INT NOT NULL DEFAULT 0,
          webhook_url TEXT NOT NULL,
          hmac VARCHAR(128) NOT NULL,
          created_at VARCHAR(40) NOT NULL,
          revoked_at VARCHAR(40) NULL,
          UNIQUE KEY api_keys_id (key_id),
          KEY api_keys_by_name (kind, name)
        ) ${MY_TABLE}`,
        `CREATE TABLE gc_secrets (name VARCHAR(64) PRIMARY KEY, value TEXT NOT NULL) ${MY_TABLE}`,
      ],
    },
  },
  {
    // The controller's crash-loop records and quarantines: they outlive a
    // server, and every server sees them.
    version: 7,
    description: 'controller session facts (deaths, quarantine)',
    statements: {
      postgres: [
        `CREATE TABLE session_facts (
          session ${PG_TEXT} PRIMARY KEY,
          deaths TEXT NOT NULL,
          quarantined SMALLINT NOT NULL DEFAULT 0,
          updated_at BIGINT NOT NULL
        )`,
      ],
      mysql: [
        `CREATE TABLE session_facts (
          session VARCHAR(128) PRIMARY KEY,
          deaths TEXT NOT NULL,
          quarantined TINYINT NOT NULL DEFAULT 0,
          updated_at BIGINT NOT NULL
        ) ${MY_TABLE}`,
      ],
    },
  },
  {
    // The merge queue: its requests, each attempt's outcome and each
    // candidate build (for the stats). A submission locks its rig's row in
    // mq_rigs first, so two servers never queue the same branch twice.
    version: 8,
    description: 'merge queue (requests, attempts, builds, rig locks)',
    statements: {
      postgres: [
        `CREATE TABLE mr (
          seq BIGSERIAL PRIMARY KEY,
          id ${PG_TEXT} NOT NULL UNIQUE,
          rig ${PG_TEXT} NOT NULL,
          branch ${PG_TEXT} NOT NULL,
          head ${PG_TEXT} NOT NULL,
          bead ${PG_TEXT} NOT NULL DEFAULT '',
          author ${PG_TEXT} NOT NULL DEFAULT '',
          priority INTEGER NOT NULL DEFAULT 2,
          state ${PG_TEXT} NOT NULL,
          submitted_at BIGINT NOT NULL,
          retries INTEGER NOT NULL DEFAULT 0,
          base TEXT NOT NULL DEFAULT '',
          tested TEXT NOT NULL DEFAULT '',
          merged_sha TEXT NOT NULL DEFAULT '',
          reason TEXT NOT NULL DEFAULT '',
          detail TEXT NOT NULL DEFAULT '',
          conflict_bead TEXT NOT NULL DEFAULT '',
          started_at BIGINT,
          finished_at BIGINT,
          updated_at BIGINT NOT NULL
        )`,
        'CREATE INDEX mr_rig_state ON mr(rig, state, seq)',
        'CREATE INDEX mr_branch ON mr(rig, branch, head)',
        "CREATE INDEX mr_bead ON mr(bead) WHERE bead != ''",
        `CREATE TABLE mr_attempts (
          mr_id ${PG_TEXT} NOT NULL,
          rig ${PG_TEXT} NOT NULL,
          outcome ${PG_TEXT} NOT NULL,
          at BIGINT NOT NULL
        )`,
        'CREATE INDEX mr_attempts_rig ON mr_attempts(rig, at)',
        `CREATE TABLE mq_builds (
          rig ${PG_TEXT} NOT NULL,
          size INTEGER NOT NULL,
          outcome ${PG_TEXT} NOT NULL,
          depth INTEGER NOT NULL DEFAULT 0,
          gate_runs INTEGER NOT NULL DEFAULT 0,
          at BIGINT NOT NULL
        )`,
        'CREATE INDEX mq_builds_rig ON mq_builds(rig, at)',
        `CREATE TABLE mq_rigs (rig ${PG_TEXT} PRIMARY KEY, submissions BIGINT NOT NULL DEFAULT 0)`,
      ],
      mysql: [
        `CREATE TABLE mr (
          seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
          id VARCHAR(64) NOT NULL,
          rig VARCHAR(128) NOT NULL,
          branch VARCHAR(255) NOT NULL,
          head VARCHAR(64) NOT NULL,
          bead VARCHAR(128) NOT NULL DEFAULT '',
          author VARCHAR(191) NOT NULL DEFAULT '',
          priority INT NOT NULL DEFAULT 2,
          state VARCHAR(16) NOT NULL,
          submitted_at BIGINT NOT NULL,
          retries INT NOT NULL DEFAULT 0,
          base VARCHAR(64) NOT NULL DEFAULT '',
          tested VARCHAR(64) NOT NULL DEFAULT '',
          merged_sha VARCHAR(64) NOT NULL DEFAULT '',
          reason TEXT NOT NULL,
          detail MEDIUMTEXT NOT NULL,
          conflict_bead VARCHAR(128) NOT NULL DEFAULT '',
          started_at BIGINT NULL,
          finished_at BIGINT NULL,
          updated_at BIGINT NOT NULL,
          UNIQUE KEY mr_id (id),
          KEY mr_rig_state (rig, state, seq),
          KEY mr_branch (rig, branch, head),
          KEY mr_bead (bead)
        ) ${MY_TABLE}`,
        `CREATE TABLE mr_attempts (
          mr_id VARCHAR(64) NOT NULL,
          rig VARCHAR(128) NOT NULL,
          outcome VARCHAR(16) NOT NULL,
          at BIGINT NOT NULL,
          KEY mr_attempts_rig (rig, at)
        ) ${MY_TABLE}`,
        `CREATE TABLE mq_builds (
          rig VARCHAR(128) NOT NULL,
          size INT NOT NULL,
          outcome VARCHAR(16) NOT NULL,
          depth INT NOT NULL DEFAULT 0,
          gate_runs INT NOT NULL DEFAULT 0,
          at BIGINT NOT NULL,
          KEY mq_builds_rig (rig, at)
        ) ${MY_TABLE}`,
        `CREATE TABLE mq_rigs (rig VARCHAR(128) PRIMARY KEY, submissions BIGINT NOT NULL DEFAULT 0) ${MY_TABLE}`,
      ],
    },
  },
  {
    // Named leases with fencing terms: the city's leader is the holder of
    // the "leader" lease; a new holder bumps the term, and a leader-only
    // write checks its term under a share lock of this row (lease.ts).
    version: 9,
    description: 'leases (leader election, fencing terms)',
    statements: {
      postgres: [
        `CREATE TABLE gc_leases (
          name ${PG_TEXT} PRIMARY KEY,
          holder ${PG_TEXT} NOT NULL DEFAULT '',
          term BIGINT NOT NULL DEFAULT 0,
          expires_at BIGINT NOT NULL DEFAULT 0,
          acquired_at BIGINT NOT NULL DEFAULT 0
        )`,
      ],
      mysql: [
        `CREATE TABLE gc_leases (
          name VARCHAR(64) PRIMARY KEY,
          holder VARCHAR(191) NOT NULL DEFAULT '',
          term BIGINT NOT NULL DEFAULT 0,
          expires_at BIGINT NOT NULL DEFAULT 0,
          acquired_at BIGINT NOT NULL DEFAULT 0
        ) ${MY_TABLE}`,
      ],
    },
  },
  {
    version: 10,
    description: 'the live servers of a city; the server running each pending request',
    statements: {
      postgres: [
        `CREATE TABLE gc_servers (
          id ${PG_TEXT} PRIMARY KEY,
          host ${PG_TEXT} NOT NULL,
          pid INTEGER NOT NULL,
          role ${PG_TEXT} NOT NULL,
          provider ${PG_TEXT} NOT NULL DEFAULT '',
          socket ${PG_TEXT} NOT NULL DEFAULT '',
          url ${PG_TEXT} NOT NULL DEFAULT '',
          term BIGINT NOT NULL DEFAULT 0,
          started_at BIGINT NOT NULL,
          seen_at BIGINT NOT NULL
        )`,
        `ALTER TABLE idempotency ADD COLUMN server ${PG_TEXT} NOT NULL DEFAULT ''`,
      ],
      mysql: [
        `CREATE TABLE gc_servers (
          id VARCHAR(64) PRIMARY KEY,
          host VARCHAR(255) NOT NULL,
          pid INTEGER NOT NULL,
          role VARCHAR(16) NOT NULL,
          provider VARCHAR(32) NOT NULL DEFAULT '',
          socket VARCHAR(1024) NOT NULL DEFAULT '',
          url VARCHAR(1024) NOT NULL DEFAULT '',
          term BIGINT NOT NULL DEFAULT 0,
          started_at BIGINT NOT NULL,
          seen_at BIGINT NOT NULL
        ) ${MY_TABLE}`,
        "ALTER TABLE idempotency ADD COLUMN server VARCHAR(64) NOT NULL DEFAULT ''",
      ],
    },
  },
  {
    version: 11,
    description: 'city-wide flags (suspended), for whichever server leads',
    statements: {
      postgres: [
        `CREATE TABLE gc_flags (
          name ${PG_TEXT} PRIMARY KEY,
          value ${PG_TEXT} NOT NULL,
          at BIGINT NOT NULL
        )`,
      ],
      mysql: [
        `CREATE TABLE gc_flags (
          name VARCHAR(64) PRIMARY KEY,
          value VARCHAR(255) NOT NULL,
          at BIGINT NOT NULL
        ) ${MY_TABLE}`,
      ],
    },
  },
  {
    // Usage records (on SQLite: .gc/usage.db): tokens and dollars per agent, for
    // gc costs and budgets on whichever server leads.
    version: 12,
    description: 'usage records (tokens, cost)',
    statements: {
      postgres: [
        `CREATE TABLE gc_usage (
          seq BIGSERIAL PRIMARY KEY,
          dedup ${PG_TEXT} NOT NULL UNIQUE,
          session ${PG_TEXT} NOT NULL,
          agent ${PG_TEXT} NOT NULL,
          rig ${PG_TEXT} NOT NULL,
          bead ${PG_TEXT} NOT NULL,
          provider ${PG_TEXT} NOT NULL,
          model ${PG_TEXT} NOT NULL,
          input_tokens BIGINT NOT NULL,
          cached_input_tokens BIGINT NOT NULL,
          cache_write_tokens BIGINT NOT NULL,
          output_tokens BIGINT NOT NULL,
          cost_usd DOUBLE PRECISION,
          source ${PG_TEXT} NOT NULL,
          at BIGINT NOT NULL
        )`,
        'CREATE INDEX usage_at ON gc_usage(at)',
        'CREATE INDEX usage_agent ON gc_usage(agent, at)',
        'CREATE INDEX usage_rig ON gc_usage(rig, at)',
      ],
      mysql: [
        `CREATE TABLE gc_usage (
          seq BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
          dedup VARCHAR(255) NOT NULL,
          session VARCHAR(128) NOT NULL,
          agent VARCHAR(128) NOT NULL,
          rig VARCHAR(128) NOT NULL,
          bead VARCHAR(64) NOT NULL,
          provider VARCHAR(64) NOT NULL,
          model VARCHAR(128) NOT NULL,
          input_tokens BIGINT NOT NULL,
          cached_input_tokens BIGINT NOT NULL,
          cache_write_tokens BIGINT NOT NULL,
          output_tokens BIGINT NOT NULL,
          cost_usd DOUBLE NULL,
          source VARCHAR(16) NOT NULL,
          at BIGINT NOT NULL,
          UNIQUE KEY usage_dedup (dedup),
          KEY usage_at (at),
          KEY usage_agent (agent, at),
          KEY usage_rig (rig, at)
        ) ${MY_TABLE}`,
      ],
    },
  },
  {
    version: 13,
    description: 'metrics keys (they may only scrape GET /metrics)',
    statements: {
      postgres: [
        'ALTER TABLE api_keys DROP CONSTRAINT IF EXISTS api_keys_kind_check',
        `ALTER TABLE api_keys ADD CONSTRAINT api_keys_kind_check
          CHECK (kind IN ('admin','operator','agent','metrics'))`,
      ],
      // The MySQL table has no CHECK on kind.
      mysql: [],
    },
  },
];
