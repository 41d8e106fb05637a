/**
 * A flood of half-open connections: the listener refuses what is past its
 * cap (logging it once and recording `api.connections_capped`), drops the
 * half-open ones within seconds, and the city keeps answering on its other
 * listener and ticking meanwhile.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CityServer } from '../../src/server/index.js';
import { defaultMaxConnections, fdLimit } from '../../src/api/listener.js';
import { readAdminKey } from '../../src/city/index.js';
import { CONFIG_HOME } from '../helpers/cli.js';
import { apiCall } from '../helpers/http.js';
import { waitFor } from '../helpers/wait.js';

const CAP = 40;
let root: string;
let server: CityServer;
let port: number;
const lines: string[] = [];

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return p;
}

beforeAll(async () => {
  process.env.GC_CONFIG_HOME = CONFIG_HOME;
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-flood-'));
  port = await freePort();
  await writeFile(
    path.join(root, 'city.toml'),
    `[workspace]\nname = "flood"\n[daemon]\npatrol_interval = "1h"\n[api]\nport = ${port}\nmax_connections = ${CAP}\n`,
  );
  server = await CityServer.start({ root, sessionProvider: 'fake', log: (l) => lines.push(l) });
});

afterAll(async () => {
  await server?.stop('test');
  await rm(root, { recursive: true, force: true });
});

describe('the default cap', () => {
  it('leaves a reserve of the fd limit for sessions and gates', () => {
    expect(defaultMaxConnections(1, 1024)).toBe(768);
    expect(defaultMaxConnections(2, 1024)).toBe(384);
    expect(defaultMaxConnections(2, 1_048_576)).toBe(100_000);
    expect(defaultMaxConnections(1, 100)).toBe(32);
    expect(fdLimit()).toBeGreaterThan(0);
    expect(fdLimit('/nonexistent')).toBeUndefined();
  });
});

describe('a connection flood', () => {
  it(
    'is capped, reported, and dropped; the socket API and the tick keep working',
    { timeout: 60_000 },
    async () => {
      const admin = readAdminKey(root)!;
      const socks: Socket[] = [];
      const closed = new Set<Socket>();
      for (let i = 0; i < CAP * 3; i++) {
        const s = connect(port, '127.0.0.1');
        s.on('error', () => undefined);
        s.on('close', () => closed.add(s));
        s.resume();
        // Headers never finished.
        s.write('GET /v0/ping HTTP/1.1\r\nHost: x\r\n');
        socks.push(s);
      }
      try {
        // Past the cap: refused at once.
        await waitFor(() => closed.size >= CAP * 2 - 5, 'the connections past the cap are closed');
        // The unix socket is its own listener: the CLI and agents still get in.
        const ping = await apiCall({ socketPath: server.socketPath }, 'GET', '/v0/ping', {
          token: admin,
        });
        expect(ping.status).toBe(200);
        const poke = await apiCall({ socketPath: server.socketPath }, 'POST', '/v0/control/poke', {
          token: admin,
        });
        expect(poke.status).toBeLessThan(300);
        await waitFor(
          () => lines.some((l) => /tcp: at its cap of 40 connections/.test(l)),
          'the cap is logged',
        );
        const capped = await server.ops.events.list({ type: 'api.connections_capped' });
        expect(capped.items.length).toBe(1);
        expect(capped.items[0]!.payload).toMatchObject({ listener: 'tcp', max_connections: CAP });
        // The half-open ones are dropped within seconds (headers timeout).
        await waitFor(() => closed.size === socks.length, 'every half-open connection is dropped');
        const tcp = await apiCall({ host: '127.0.0.1', port }, 'GET', '/v0/ping', { token: admin });
        expect(tcp.status).toBe(200);
      } finally {
        for (const s of socks) s.destroy();
      }
    },
  );
});
