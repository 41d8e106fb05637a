/**
 * `gc db status|migrate`: the city's database server, as `[database] url`
 * (or url_file, or GC_DATABASE_URL) names it. Never prints the password.
 */
import { readFileSync, statSync } from 'node:fs';
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
  events?: number;
  latest_seq?: number;
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
      if (version >= 3) {
        const [e] = await db.query<{ n: number }>('SELECT count(*) AS n FROM events');
        const [s] = await db.query<{ next: number }>('SELECT next FROM event_seq WHERE id = 1');
        out.events = Number(e?.n ?? 0);
        out.latest_seq = Number(s?.next ?? 0);
      }
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
      if (out.events !== undefined) {
        printLine(`events:   ${out.events} kept, latest seq ${out.latest_seq}`);
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

/** The target of `gc db copy`: a URL without a password, or a 0600 file holding one. */
function copyTarget(o: { to?: string; toFile?: string }): string {
  if (!o.to === !o.toFile) {
    throw new GcError('invalid', 'give --to <url> or --to-file <file> (one of them)');
  }
  if (o.to) {
    let u: URL;
    try {
      u = new URL(o.to);
    } catch {
      throw new GcError('invalid', `--to: not a URL: ${JSON.stringify(o.to)}`);
    }
    if (u.password) {
      throw new GcError(
        'invalid',
        '--to: a password on the command line is visible to every user (ps)',
        {
          fix: 'put the URL in a file only you can read (chmod 600) and pass --to-file',
        },
      );
    }
    return o.to;
  }
  const file = o.toFile!;
  let st;
  try {
    st = statSync(file);
  } catch (e) {
    throw new GcError(
      'invalid',
      `--to-file: cannot read ${file}: ${(e as NodeJS.ErrnoException).code}`,
    );
  }
  if (st.mode & 0o077) {
    throw new GcError(
      'invalid',
      `--to-file: ${file} may be read by others (mode ${(st.mode & 0o777).toString(8)})`,
      { fix: `chmod 600 ${file}` },
    );
  }
  const url = (readFileSync(file, 'utf8').split('\n')[0] ?? '').trim();
  if (!url) throw new GcError('invalid', `--to-file: ${file} is empty`);
  return url;
}

export async function copyCmd(
  o: { to?: string; toFile?: string },
  g: GlobalOptions,
): Promise<void> {
  const url = copyTarget(o);
  const { dialectOf } = await import('../../db/index.js');
  try {
    dialectOf(url);
  } catch (e) {
    throw new GcError('invalid', `--to: ${(e as Error).message}`);
  }
  const { copyCityToDatabase } = await import('../../city/index.js');
  const root = cityRoot(g);
  const r = await copyCityToDatabase(root, url, (line) => {
    if (!g.json) process.stderr.write(`gc: ${line}\n`);
  });
  if (g.json) {
    printJson(r);
    return;
  }
  printLine(`copied to ${r.to}:`);
  for (const [t, n] of Object.entries(r.tables)) printLine(`  ${t.padEnd(12)} ${n}`);
  printLine(`  latest seq   ${r.latest_seq}`);
  printLine(
    r.replay_checked === null
      ? '  replay       skipped: the log no longer starts at seq 1 (retention pruned it)'
      : `  replay       the log replays to the store (${r.replay_checked} beads agree)`,
  );
  printLine('next: set [database] url (or url_file, or GC_DATABASE_URL) to it, then gc start;');
  if (r.copied_from.length) {
    printLine(`  once it runs there, remove what was copied: ${r.copied_from.join(' ')}`);
  }
}
