/**
 * Readers that stop reading: a stream waits for its socket to drain instead
 * of buffering the log in memory, a reader that takes nothing for the stall
 * time is cut off, and it resumes from its last id with nothing lost.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CityServer } from '../../src/server/index.js';
import { sseStats } from '../../src/api/sse.js';
import { readAdminKey } from '../../src/city/index.js';
import { CONFIG_HOME } from '../helpers/cli.js';
import { waitFor } from '../helpers/wait.js';

const EVENTS = 2000;
const PAD = 'x'.repeat(10_000); // ~20 MB of log
let root: string;
let server: CityServer;
let admin: string;

beforeAll(async () => {
  process.env.GC_CONFIG_HOME = CONFIG_HOME;
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-sse-'));
  await writeFile(
    path.join(root, 'city.toml'),
    '[workspace]\nname = "sse"\n[daemon]\npatrol_interval = "1h"\n',
  );
  server = await CityServer.start({
    root,
    sessionProvider: 'fake',
    log: () => undefined,
    sseStallMs: 1500,
  });
  admin = readAdminKey(root)!;
  await Promise.all(
    Array.from({ length: EVENTS }, (_, i) =>
      server.ops.events.record({ type: 'test.padding', actor: 'test', payload: { i, pad: PAD } }),
    ),
  );
}, 60_000);

afterAll(async () => {
  await server?.stop('test');
  await rm(root, { recursive: true, force: true });
});

function openStream(lastId?: string): Socket {
  const s = connect(server.socketPath);
  s.on('error', () => undefined);
  s.write(
    `GET /v0/events/stream?type=test.padding HTTP/1.1\r\nHost: gc\r\nAuthorization: Bearer ${admin}\r\n` +
      (lastId ? `Last-Event-ID: ${lastId}\r\n` : '') +
      '\r\n',
  );
  return s;
}

describe('stalled SSE readers', () => {
  it('hold at most a socket buffer each, are cut off, and resume with nothing lost', async () => {
    const stalled = Array.from({ length: 4 }, () => openStream());
    const closed = new Set<Socket>();
    for (const s of stalled) s.on('close', () => closed.add(s));
    await waitFor(() => sseStats().streams === 4, 'four streams open');
    // None of them reads: each is cut off once its socket stays full.
    await waitFor(() => sseStats().streams === 0, 'the stalled streams are cut off');
    expect(sseStats().peak_buffered_bytes).toBeLessThan(2 * 1024 * 1024);
    for (const s of stalled) s.destroy();

    // A reader that reads gets everything, and resumes after a cut from its last id.
    const ids: number[] = [];
    const read = (lastId?: string, stopAfter = Infinity) =>
      new Promise<void>((resolve) => {
        const s = openStream(lastId);
        let buf = '';
        s.on('data', (c: Buffer) => {
          buf += c.toString('utf8');
          let k: number;
          while ((k = buf.indexOf('\n\n')) >= 0) {
            const frame = buf.slice(0, k);
            buf = buf.slice(k + 2);
            const id = /^id: (\d+)$/m.exec(frame);
            if (id) ids.push(Number(id[1]));
            if (ids.length >= stopAfter || ids.length === EVENTS) {
              s.destroy();
              resolve();
              return;
            }
          }
        });
        s.on('close', () => resolve());
      });
    await read(undefined, 500);
    await read(String(ids[ids.length - 1]));
    expect(ids.length).toBe(EVENTS);
    expect(new Set(ids).size).toBe(EVENTS);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
  }, 60_000);
});
