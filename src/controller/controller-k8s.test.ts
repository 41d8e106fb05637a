import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BASE } from '../../test/helpers/city-spec.js';
import { fakeCluster, type FakeCluster } from '../../test/helpers/k8s.js';
import { until } from '../../test/helpers/wait.js';
import { CityOps } from '../city/index.js';
import { parseCityConfig } from '../config/index.js';
import { MemoryEventLog } from '../events/index.js';
import { sanitizeName } from '../runtime/index.js';
import { MemoryStore } from '../store/index.js';
import { Controller } from './controller.js';
import { citySpec } from './spec.js';

describe('controller on the k8s provider (fake API server)', () => {
  let cluster: FakeCluster;
  afterEach(async () => {
    await cluster?.close();
  });

  it('the controller: starts pods, restarts one deleted behind its back, and acts on nothing while stale', async () => {
    cluster = await fakeCluster();
    const dir = mkdtempSync(path.join(tmpdir(), 'gc-k8s-city-'));
    try {
      const spec = citySpec(
        parseCityConfig(
          BASE + '[[agent]]\nname = "mayor"\nstart_command = "sleep 600"\n',
          path.join(dir, 'city.toml'),
        ),
      );
      const events = new MemoryEventLog();
      const ops = new CityOps(new MemoryStore({ prefix: 'gc' }), events);
      const provider = cluster.provider();
      const controller = new Controller({ provider, ops, spec });
      await controller.tick();
      expect(await provider.isRunning('mayor')).toBe(true);
      const pod = sanitizeName('mayor');
      const uid1 = String(cluster.kube.pod(pod)?.metadata?.uid);

      // Deleted behind the city's back: seen from the watch, restarted.
      cluster.kube.deletePod(pod);
      await until(
        'seen dead',
        () => provider.isRunning('mayor'),
        (v) => !v,
      );
      await controller.tick();
      expect(await provider.isRunning('mayor')).toBe(true);
      const uid2 = String(cluster.kube.pod(pod)?.metadata?.uid);
      expect(uid2).not.toBe(uid1);

      // API server down: the tick does nothing, and says why.
      await cluster.kube.down();
      await until('stale', () => Promise.resolve(provider.health().stale), Boolean);
      const creates = cluster.kube.count('create');
      await expect(controller.tick()).rejects.toThrow(/stale/);
      expect(controller.status().provider_stale?.reason).toBeTruthy();
      const types = (await events.list({})).items.map((e) => e.type);
      expect(types).toContain('controller.provider_stale');
      // The pod dies while gc cannot see: no restart until the cache is current.
      cluster.kube.deletePod(pod);
      await expect(controller.tick()).rejects.toThrow(/stale/);
      expect(cluster.kube.count('create')).toBe(creates);
      await cluster.kube.up();
      await until(
        'current',
        () => Promise.resolve(provider.health().stale),
        (v) => !v,
        10_000,
      );
      await controller.tick();
      expect(controller.status().provider_stale).toBeUndefined();
      expect((await events.list({})).items.map((e) => e.type)).toContain(
        'controller.provider_recovered',
      );
      expect(await provider.isRunning('mayor')).toBe(true);
      expect(cluster.kube.count('create')).toBe(creates + 1);
      await provider.stop('mayor');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
