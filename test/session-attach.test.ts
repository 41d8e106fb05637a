/** `attach = false` on an agent: `gc session attach` refuses its sessions and says what to do instead. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONFIG_HOME, gc as runGc } from './helpers/cli.js';

let root = '';
const gc = (args: string[]) =>
  runGc(['--city', root, ...args], { env: { GC_CONFIG_HOME: CONFIG_HOME } });

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'gc-attach-'));
  await writeFile(
    path.join(root, 'city.toml'),
    '[workspace]\nname = "at"\n[session]\nprovider = "subprocess"\n' +
      '[[agent]]\nname = "mayor"\nstart_command = "sleep 600"\nattach = false\n' +
      '[[agent]]\nname = "worker"\nstart_command = "sleep 600"\nmax_active_sessions = 2\nattach = false\n' +
      '[[agent]]\nname = "open"\nstart_command = "sleep 600"\n',
  );
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('attach = false', () => {
  it('gc session attach refuses the agent’s sessions, pool members too; others reach the provider', async () => {
    for (const session of ['mayor', 'worker-2']) {
      const r = await gc(['session', 'attach', session]);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(/has attach = false/);
      expect(r.stderr).toContain(`gc session peek ${session}`);
    }
    // An agent without it gets as far as the provider (subprocess sessions cannot be attached).
    const other = await gc(['session', 'attach', 'open']);
    expect(other.code).not.toBe(0);
    expect(other.stderr).not.toMatch(/attach = false/);
  });
});
