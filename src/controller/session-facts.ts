/**
 * The controller's durable facts about sessions: when each died within the
 * restart window (the crash-loop record) and whether it is quarantined. They
 * outlive the server, so a restarted server neither restarts a quarantined
 * crash loop nor forgets how close a session is to quarantine. Kept in
 * `.gc/sessions.json` (written whole, atomically: it holds only the
 * sessions in trouble), or with [database] url in the city's database
 * (`session_facts`, schema v7), where every server sees them. One seam, one
 * conformance suite (session-facts-conformance.ts).
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open, rename } from 'node:fs/promises';
import path from 'node:path';
import { GcError } from '../core/index.js';
import type { SqlDb } from '../db/index.js';
import type { SessionTracker } from './plan.js';
import type { CitySpec } from './spec.js';

export interface SessionFact {
  session: string;
  /** Deaths (and failed starts) within the restart window, epoch ms, oldest first. */
  deaths: number[];
  quarantined: boolean;
}

export interface SessionFacts {
  /** Every session with a fact worth keeping. */
  load(): Promise<SessionFact[]>;
  /** Keep a session's facts; a session with no deaths and no quarantine is forgotten. */
  save(fact: SessionFact): Promise<void>;
  close(): Promise<void>;
}

const empty = (f: SessionFact): boolean => f.deaths.length === 0 && !f.quarantined;

export class FileSessionFacts implements SessionFacts {
  private readonly facts = new Map<string, SessionFact>();
  private loaded = false;
  /** Writes in order, one at a time. */
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly file: string) {}

  static forCity(gcDir: string): FileSessionFacts {
    return new FileSessionFacts(path.join(gcDir, 'sessions.json'));
  }

  load(): Promise<SessionFact[]> {
    if (!this.loaded) {
      this.loaded = true;
      if (existsSync(this.file)) {
        let parsed: { sessions?: SessionFact[] };
        try {
          parsed = JSON.parse(readFileSync(this.file, 'utf8')) as { sessions?: SessionFact[] };
        } catch (e) {
          return Promise.reject(
            new GcError('internal', `cannot read ${this.file}: ${(e as Error).message}`, {
              fix: `move it aside to start with no crash-loop records (quarantines are lost)`,
            }),
          );
        }
        for (const f of parsed.sessions ?? []) this.facts.set(f.session, f);
      }
    }
    return Promise.resolve([...this.facts.values()].map((f) => ({ ...f, deaths: [...f.deaths] })));
  }

  save(fact: SessionFact): Promise<void> {
    if (empty(fact)) this.facts.delete(fact.session);
    else this.facts.set(fact.session, { ...fact, deaths: [...fact.deaths] });
    const text = JSON.stringify({ sessions: [...this.facts.values()] }, null, 1) + '\n';
    const write = this.chain.then(() => this.writeFile(text));
    this.chain = write.catch(() => undefined);
    return write;
  }

  /** Write a temp file, fsync it, rename it over the old one. */
  private async writeFile(text: string): Promise<void> {
    await mkdir(path.dirname(this.file), { recursive: true });
    const tmp = `${this.file}.${randomBytes(4).toString('hex')}.tmp`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(text);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.file);
  }

  async close(): Promise<void> {
    await this.chain;
  }
}

export class SqlSessionFacts implements SessionFacts {
  constructor(private readonly db: SqlDb) {}

  async load(): Promise<SessionFact[]> {
    const rows = await this.db.query<{ session: string; deaths: string; quarantined: number }>(
      'SELECT session, deaths, quarantined FROM session_facts ORDER BY session',
    );
    return rows.map((r) => ({
      session: r.session,
      deaths: JSON.parse(r.deaths) as number[],
      quarantined: Number(r.quarantined) === 1,
    }));
  }

  async save(fact: SessionFact): Promise<void> {
    if (empty(fact)) {
      await this.db.run('DELETE FROM session_facts WHERE session = ?', [fact.session]);
      return;
    }
    const args = [fact.session, JSON.stringify(fact.deaths), fact.quarantined ? 1 : 0, Date.now()];
    await this.db.run(
      this.db.dialect === 'postgres'
        ? `INSERT INTO session_facts (session, deaths, quarantined, updated_at) VALUES (?, ?, ?, ?)
           ON CONFLICT (session) DO UPDATE SET deaths = excluded.deaths,
             quarantined = excluded.quarantined, updated_at = excluded.updated_at`
        : `INSERT INTO session_facts (session, deaths, quarantined, updated_at) VALUES (?, ?, ?, ?)
           ON DUPLICATE KEY UPDATE deaths = VALUES(deaths), quarantined = VALUES(quarantined),
             updated_at = VALUES(updated_at)`,
      args,
    );
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Take up kept facts into the controller's trackers (deaths older than the
 * restart window are dropped); returns how many sessions had facts.
 */
export async function loadFacts(
  facts: SessionFacts | undefined,
  tracker: (session: string) => SessionTracker,
  now: number,
  spec: CitySpec,
): Promise<number> {
  if (!facts) return 0;
  const kept = await facts.load();
  for (const f of kept) {
    const t = tracker(f.session);
    t.deaths = f.deaths.filter((d) => now - d < spec.daemon.restartWindowMs);
    if (f.quarantined) t.quarantined = true;
  }
  return kept.length;
}

/** Keep a session's crash-loop record and quarantine (a failure is logged, not thrown). */
export function saveFacts(
  facts: SessionFacts | undefined,
  session: string,
  t: SessionTracker | undefined,
  log: (line: string) => void,
): Promise<void> {
  if (!facts) return Promise.resolve();
  return facts
    .save({ session, deaths: [...(t?.deaths ?? [])], quarantined: t?.quarantined === true })
    .catch((e: unknown) => {
      log(`keeping the crash-loop record of ${session} failed: ${(e as Error).message}`);
    });
}
