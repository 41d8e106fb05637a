/**
 * Choosing a city's database: [database] url, url_file (owner-only), the
 * GC_DATABASE_URL override, what [beads] provider must agree with, and
 * that a URL's password is never shown.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { database } from '../../test/helpers/db.js';
import { ConfigError, loadCityConfig, parseCityConfig, redactConfig } from '../config/index.js';
import { databaseTarget } from './database.js';
import { openCityState } from './state.js';

const dir = mkdtempSync(path.join(tmpdir(), 'gc-dbcfg-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const loaded = (toml: string, env: NodeJS.ProcessEnv = {}) =>
  parseCityConfig(`[workspace]\nname = "d"\n${toml}`, path.join(dir, 'city.toml'), env);

describe('[database]', () => {
  it('no url: the city stays on SQLite', () => {
    expect(databaseTarget(loaded(''))).toBeUndefined();
  });

  it('url, or GC_DATABASE_URL over it, names the server and its dialect', () => {
    expect(databaseTarget(loaded('[database]\nurl = "postgres://gc@db/city"\n'))).toEqual({
      url: 'postgres://gc@db/city',
      dialect: 'postgres',
    });
    const env = { GC_DATABASE_URL: 'mysql://root@127.0.0.1:3306/city' };
    expect(databaseTarget(loaded('[database]\nurl = "postgres://gc@db/city"\n', env))).toEqual({
      url: env.GC_DATABASE_URL,
      dialect: 'mysql',
    });
  });

  it('url_file must be readable by its owner only; its first line is the url', () => {
    const file = path.join(dir, 'db.url');
    writeFileSync(file, 'postgres://gc:pw@db/city\n');
    chmodSync(file, 0o644);
    const l = loaded('[database]\nurl_file = "db.url"\n');
    expect(() => databaseTarget(l)).toThrow(ConfigError);
    expect(() => databaseTarget(l)).toThrow(/may be read by others \(mode 644\); chmod 600 it/);
    chmodSync(file, 0o600);
    expect(databaseTarget(l)?.dialect).toBe('postgres');
    expect(() => databaseTarget(loaded('[database]\nurl_file = "nope"\n'))).toThrow(
      /database\.url_file.*cannot read/,
    );
    expect(() =>
      databaseTarget(loaded('[database]\nurl = "postgres://x/y"\nurl_file = "db.url"\n')),
    ).toThrow(/set url or url_file, not both/);
  });

  it('an unknown scheme is a config error that does not echo the url', () => {
    const l = loaded('[database]\nurl = "oracle://scott:tiger@db/x"\n');
    expect(() => databaseTarget(l)).toThrow(/database\.url.*unknown database URL scheme "oracle"/);
    expect(() => databaseTarget(l)).not.toThrow(/tiger/);
  });

  it('the password is masked wherever the config is shown', () => {
    const shown = redactConfig(
      loaded('[database]\nurl = "postgres://gc:hunter2@db:5432/city"\n').config,
    ) as { database: { url: string } };
    expect(shown.database.url).toBe('postgres://gc:***@db:5432/city');
  });

  it('[beads] provider postgres without a server, or naming the other dialect, is refused', async () => {
    const root = mkdtempSync(path.join(dir, 'city-'));
    writeFileSync(
      path.join(root, 'city.toml'),
      '[workspace]\nname = "d"\n[beads]\nprovider = "postgres"\n',
    );
    await expect(openCityState({ root, env: {} })).rejects.toThrow(
      /beads\.provider.*needs a database server: set \[database\] url/,
    );
    await expect(
      openCityState({ root, env: { GC_DATABASE_URL: 'mysql://root@127.0.0.1:1/x' } }),
    ).rejects.toThrow(/"postgres" but \[database\] url is a mysql server/);
    // Nothing was left locked: a good config opens.
    writeFileSync(path.join(root, 'city.toml'), '[workspace]\nname = "d"\n');
    const st = await openCityState({ root, env: {} });
    expect(st.store.backend).toBe('sqlite');
    await st.close();
    expect((await loadCityConfig(path.join(root, 'city.toml'), {})).config.database.url).toBe('');
  });

  it('an [events] provider off the server beside beads on it is refused, before connecting', async () => {
    const root = mkdtempSync(path.join(dir, 'city-'));
    const script = path.join(root, 'events.sh');
    writeFileSync(script, '#!/bin/sh\nexit 2\n', { mode: 0o755 });
    // Port 1: nothing listens; the refusal must come first, from the config.
    const env = { GC_DATABASE_URL: 'postgres://gc@127.0.0.1:1/x' };
    for (const provider of [`exec:${script}`, 'memory']) {
      writeFileSync(
        path.join(root, 'city.toml'),
        `[workspace]\nname = "d"\n[events]\nprovider = "${provider}"\n`,
      );
      const open = openCityState({ root, env });
      await expect(open).rejects.toBeInstanceOf(ConfigError);
      await expect(open).rejects.toThrow(
        /events\.provider.*cannot keep the log of a city whose beads are on its database server/,
      );
    }
    // Beads kept by a script: the store's events go through the log, which may be anywhere.
    writeFileSync(
      path.join(root, 'city.toml'),
      `[workspace]\nname = "d"\n[beads]\nprovider = "exec:${script}"\n[events]\nprovider = "memory"\n`,
    );
    await expect(openCityState({ root, env })).rejects.not.toBeInstanceOf(ConfigError);
  });
});

const pg = await database('postgres');
describe.skipIf(!pg.url)(`a city on PostgreSQL${pg.note}`, () => {
  it('opens its store on the server and keeps no beads.db', async () => {
    const { Scratch } = await import('../../test/helpers/db.js');
    const scratch = new Scratch(pg.url!);
    try {
      const url = await scratch.createDatabase();
      const root = mkdtempSync(path.join(dir, 'pgcity-'));
      writeFileSync(path.join(root, 'city.toml'), '[workspace]\nname = "pgc"\n');
      const st = await openCityState({ root, env: { GC_DATABASE_URL: url } });
      try {
        expect(st.store.backend).toBe('postgres');
        const b = await st.store.create({ title: 'on the server' });
        expect(b.id).toMatch(/^pgc-/);
      } finally {
        await st.close();
      }
      const { existsSync } = await import('node:fs');
      expect(existsSync(path.join(root, '.gc', 'beads.db'))).toBe(false);
    } finally {
      await scratch.dropAll();
    }
  });
});
