/**
 * A damaged line in the middle of the event log: GET /v0/events serves the
 * valid events around it and names the bad line (file, offset, the seqs on
 * either side) instead of failing with a 500.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CityServer } from '../../src/server/index.js';
import { readAdminKey } from '../../src/city/index.js';
import type { EventPage } from '../../src/events/index.js';
import { CONFIG_HOME } from '../helpers/cli.js';
import { apiCall } from '../helpers/http.js';

let root: string;
let server: CityServer;

beforeAll(async () => {
  process.env.GC_CONFIG_HOME = CONFIG_HOME;
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-corrupt-'));
  await writeFile(
    path.join(root, 'city.toml'),
    '[workspace]\nname = "cl"\n[daemon]\npatrol_interval = "1h"\n',
  );
  server = await CityServer.start({ root, sessionProvider: 'fake', log: () => undefined });
});
afterAll(async () => {
  await server?.stop('test');
  await rm(root, { recursive: true, force: true });
});

describe('a corrupt line mid-log', () => {
  it('is reported, and the events around it are served', async () => {
    for (let i = 0; i < 6; i++) {
      await server.ops.events.record({ type: 'test.line', actor: 't', message: `m${i}` });
    }
    const file = path.join(root, '.gc', 'events.jsonl');
    const lines = readFileSync(file, 'utf8').split('\n');
    const victim = lines.findIndex((l) => l.includes('"m2"'));
    const seqOf = (l: string) => Number(/^\{"seq":(\d+)/.exec(l)![1]);
    const badSeq = seqOf(lines[victim]!);
    // Same length, so offsets of the lines after it do not move.
    lines[victim] = lines[victim]!.replace(/"m2"/, '"m2').replace(/}$/, ' ');
    writeFileSync(file, lines.join('\n'));
    const r = await apiCall({ socketPath: server.socketPath }, 'GET', '/v0/events?type=test.line', {
      token: readAdminKey(root)!,
    });
    expect(r.status, r.text).toBe(200);
    const page = r.body as unknown as EventPage;
    expect(page.items.map((e) => e.message)).toEqual(['m0', 'm1', 'm3', 'm4', 'm5']);
    expect(page.corrupt).toHaveLength(1);
    expect(page.corrupt![0]).toMatchObject({
      file,
      after_seq: badSeq - 1,
      before_seq: badSeq + 1,
      error: 'not valid JSON',
    });
    expect(page.corrupt![0]!.offset).toBe(
      lines.slice(0, victim).reduce((n, l) => n + Buffer.byteLength(l) + 1, 0),
    );
  });
});
