/**
 * `gc db status|migrate`: the city's database server, as `[database] url`
 * (or url_file, or GC_DATABASE_URL) names it. Never prints the password.
 */
import { join } from 'node:path';
import { GcError } from '../../core/index.js';
import { cityRoot, type GlobalOptions } from '../context.js';
import { printJson, printLine } from '../output.js';

async function target(g: GlobalOptions) {
  const { loadCityConfig } = await import('../../config/index.js');
  const { databaseTarget } = await import('../../city/index.js');
  const root = cityRoot(g);
  const loaded = await loadCityConfig(join(root, 'city.toml'));
  const t = databaseTarget(loaded);
  if (!t) {
    throw new GcError('config', 'this city keeps its state in .gc/ (no [database] url)', {
      fix: 'set [database] url (or url_file, or GC_DATABASE_URL) to use a database server',
    });
  }
  return t;
}

interface DbStatus {
  server: string;
  dialect: string;
  schema_version: number;
  latest_version: number;
  up_to_date: boolean;
  beads?: number;
  outbox_pending?: number;
}

export async function status(g: GlobalOptions): Promise<void> {
  const t = await target(g);
  const { openSqlDb, redactUrl, schemaVersion, SQL_MIGRATIONS } = await import('../../db/index.js');
  const db = await openSqlDb(t.url, { poolSize: 1 });
  try {
    const version = await schemaVersion(db);
    const latest = SQL_MIGRATIONS[SQL_MIGRATIONS.length - 1]?.version ?? 0;
    const out: DbStatus = {
      server: redactUrl(t.url),
      dialect: t.dialect,
      schema_version: version,
      latest_version: latest,
      up_to_date: version === latest,
    };
    if (version > 0) {
      const [b] = await db.query<{ n: number }>('SELECT count(*) AS n FROM beads');
      const [o] = await db.query<{ n: number }>('SELECT count(*) AS n FROM outbox');
      out.beads = Number(b?.n ?? 0);
      out.outbox_pending = Number(o?.n ?? 0);
    }
    if (g.json) printJson(out);
    else {
      printLine(`database: ${out.server} (${out.dialect})`);
      printLine(
        `schema:   version ${version} of ${latest}${out.up_to_date ? '' : ' (run gc db migrate, or start the city)'}`,
      );
      if (out.beads !== undefined) {
        printLine(
          `beads:    ${out.beads}; outbox: ${out.outbox_pending} event(s) not yet in the log`,
        );
      }
    }
  } finally {
    await db.close();
  }
}

export async function migrateCmd(g: GlobalOptions): Promise<void> {
  const t = await target(g);
  const { openSqlDb, redactUrl, migrate, schemaVersion } = await import('../../db/index.js');
  const db = await openSqlDb(t.url, { poolSize: 1 });
  try {
    const before = await schemaVersion(db);
    const after = await migrate(db);
    if (g.json) printJson({ server: redactUrl(t.url), from_version: before, to_version: after });
    else if (before === after) printLine(`${redactUrl(t.url)}: schema already at version ${after}`);
    else printLine(`${redactUrl(t.url)}: schema migrated from version ${before} to ${after}`);
  } finally {
    await db.close();
  }
}
