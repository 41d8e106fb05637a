/**
 * The one decision for database-backed tests (test/helpers/db.ts): run when
 * the server answers; skip with a printed reason when it does not; fail
 * when GC_TEST_REQUIRE_DB=1. Checked against the machine's real PostgreSQL
 * and MariaDB, and against a port nothing listens on.
 */
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { DEFAULT_URLS, database, databaseRequired } from './helpers/db.js';

/** A loopback port that was free a moment ago and has no listener now. */
async function deadPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

describe('database-backed tests: run, skip or fail', () => {
  it('GC_TEST_REQUIRE_DB is read as a flag', () => {
    expect(databaseRequired({ GC_TEST_REQUIRE_DB: '1' })).toBe(true);
    expect(databaseRequired({ GC_TEST_REQUIRE_DB: 'true' })).toBe(true);
    expect(databaseRequired({})).toBe(false);
    expect(databaseRequired({ GC_TEST_REQUIRE_DB: '0' })).toBe(false);
  });

  it('an unreachable server skips with the reason printed, or fails when required', async () => {
    const url = `postgres://postgres@127.0.0.1:${await deadPort()}/test`;
    const lines: string[] = [];
    const skipped = await database('postgres', {
      url,
      required: false,
      log: (l) => lines.push(l),
    });
    expect(skipped.url).toBeUndefined();
    expect(skipped.note).toMatch(
      /skipped: postgres at 127\.0\.0\.1:\d+ is unreachable \(ECONNREFUSED\)/,
    );
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^skipping postgres tests: .*GC_TEST_REQUIRE_DB=1/);
    await expect(database('mysql', { url, required: true, log: () => undefined })).rejects.toThrow(
      /unreachable .*GC_TEST_REQUIRE_DB=1 says database-backed tests must run/,
    );
    await expect(
      database('mysql', { url: 'not a url', required: true, log: () => undefined }),
    ).rejects.toThrow(/bad URL/);
  });

  for (const kind of ['postgres', 'mysql'] as const) {
    it(`${kind}: the machine's server is found where the docs say`, async (ctx) => {
      const choice = await database(kind);
      // Not required and not there: this test reports a skip, never a pass.
      if (!choice.url) ctx.skip(choice.note);
      expect(choice.url).toBe(
        process.env[`GC_TEST_${kind.toUpperCase()}_URL`] ?? DEFAULT_URLS[kind],
      );
    });
  }
});
