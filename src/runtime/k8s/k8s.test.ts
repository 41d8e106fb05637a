import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fakeCluster, type FakeCluster } from '../../../test/helpers/k8s.js';
import { until } from '../../../test/helpers/wait.js';
import { ProviderUnavailableError } from '../errors.js';
import { buildPod, pickPod, sanitizeName, viewPod, type PodSettings } from './pod-spec.js';
import { metaValue, programOf } from './pod-scripts.js';

const SETTINGS: PodSettings = {
  namespace: 'gc',
  image: 'img:1',
  cpuRequest: '500m',
  memRequest: '1Gi',
  cpuLimit: '2',
  memLimit: '4Gi',
  graceSeconds: 5,
  labels: { team: 'a' },
};

describe('k8s pod spec (pure)', () => {
  it('pod names are DNS-1123, stable, and keep names that differ only in case or _ apart', () => {
    expect(sanitizeName('coder-1')).toBe('coder-1');
    const a = sanitizeName('Coder_1');
    const b = sanitizeName('coder-1');
    const c = sanitizeName('coder_1');
    expect(new Set([a, b, c]).size).toBe(3);
    expect(sanitizeName('Coder_1')).toBe(a);
    for (const n of [a, c, sanitizeName('x'.repeat(100)), sanitizeName('_lead')]) {
      expect(n).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      expect(n.length).toBeLessThanOrEqual(63);
    }
  });

  it('the pod carries the labels, annotation and container Gas City pods have', () => {
    const pod = buildPod('Mayor_1', SETTINGS, '/city', 'mayor');
    expect(pod.metadata?.labels).toEqual({
      team: 'a',
      app: 'gc-agent',
      'gc-session': sanitizeName('Mayor_1'),
      'gc-agent': 'mayor',
    });
    expect(pod.metadata?.annotations).toEqual({ 'gc-session-name': 'Mayor_1' });
    const c = pod.spec!.containers[0]!;
    expect(c.name).toBe('agent');
    expect(c.workingDir).toBe('/city');
    expect(c.resources).toEqual({
      requests: { cpu: '500m', memory: '1Gi' },
      limits: { cpu: '2', memory: '4Gi' },
    });
    expect(pod.spec!.restartPolicy).toBe('Never');
    expect(pod.spec!.automountServiceAccountToken).toBe(false);
    // No secret in the manifest: the session's env goes over exec stdin.
    expect(JSON.stringify(pod)).not.toMatch(/GC_TOKEN/);
  });

  it('pod status reads as the session state; the live oldest pod is picked', () => {
    const at = (phase: string, created: string, extra: object = {}) => ({
      metadata: { name: `p-${created}`, creationTimestamp: new Date(created), ...extra },
      status: { phase },
    });
    expect(viewPod(at('Pending', '2026-01-01'))).toMatchObject({ alive: true, running: false });
    expect(viewPod(at('Running', '2026-01-01'))).toMatchObject({ alive: true, running: true });
    expect(viewPod(at('Running', '2026-01-01', { deletionTimestamp: new Date() }))).toMatchObject({
      alive: false,
      running: false,
      deleting: true,
    });
    const failed = {
      ...at('Failed', '2026-01-01'),
      status: {
        phase: 'Failed',
        containerStatuses: [
          {
            name: 'agent',
            state: { terminated: { exitCode: 3 } },
            ready: false,
            restartCount: 0,
            image: '',
            imageID: '',
          },
        ],
      },
    };
    expect(viewPod(failed)).toMatchObject({ alive: false, ended: true, exitCode: 3 });
    const old = at('Running', '2026-01-01');
    const young = at('Running', '2026-02-01');
    expect(pickPod([young, failed, old])).toBe(old);
    expect(pickPod([failed, young])).toBe(young);
  });

  it('programOf finds the program of simple commands only; metaValue reads show-environment', () => {
    expect(programOf('A=1 claude --x')).toBe('claude');
    expect(programOf('cd x && y')).toBeUndefined();
    expect(programOf('$(x)')).toBeUndefined();
    expect(metaValue('K=a=b\n', 'K')).toBe('a=b');
    expect(metaValue('-K\n', 'K')).toBe('');
  });
});

describe('k8s client loading', () => {
  it('the Kubernetes client library is loaded only when a k8s provider talks to a cluster', () => {
    // Every gc command loads the runtime module; the library takes a second to load.
    const src = path.resolve(import.meta.dirname, '..', '..');
    const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter(
      (f) => f.endsWith('.ts') && !f.endsWith('.test.ts'),
    );
    const eager = files.filter((f) =>
      /^import (?!type )[^;]*from '@kubernetes\/client-node'/m.test(
        readFileSync(path.join(src, f), 'utf8'),
      ),
    );
    expect(eager).toEqual([]);
    expect(readFileSync(path.join(src, 'runtime', 'k8s', 'client.ts'), 'utf8')).toContain(
      "import('@kubernetes/client-node')",
    );
  });
});

describe('k8s provider on the fake API server', () => {
  let cluster: FakeCluster;
  afterEach(async () => {
    await cluster?.close();
  });

  it('a steady tick (snapshot, list, is-running) makes no API call', async () => {
    cluster = await fakeCluster();
    const p = cluster.provider();
    await p.start('steady-a', { command: 'sleep 600' });
    const before = cluster.kube.count();
    for (let i = 0; i < 5; i++) {
      await p.snapshot('');
      await p.listRunning('steady');
      await p.isRunning('steady-a');
    }
    expect(cluster.kube.count() - before).toBe(0);
    await p.stop('steady-a');
  });

  it('a dropped watch reopens from its resourceVersion without a relist', async () => {
    cluster = await fakeCluster({ processes: false });
    const p = cluster.provider();
    await p.snapshot('');
    expect(p.informer.lists).toBe(1);
    await until(
      'the watch',
      () => Promise.resolve(cluster.kube.openWatches),
      (n) => n === 1,
    );
    cluster.kube.endWatches();
    cluster.kube.addPod(buildPod('late', SETTINGS, undefined, undefined));
    await until(
      'the late pod',
      () => p.listRunning(''),
      (v) => v.includes('late'),
    );
    expect(p.informer.lists).toBe(1);
    expect(cluster.kube.count('watch')).toBeGreaterThanOrEqual(2);
  });

  it('API server down: stale, snapshot refuses; back after history compaction: 410, relist, current', async () => {
    cluster = await fakeCluster({ processes: false });
    const p = cluster.provider();
    cluster.kube.addPod(buildPod('one', SETTINGS, undefined, undefined));
    await until(
      'one',
      () => p.listRunning(''),
      (v) => v.includes('one'),
    );
    await cluster.kube.down();
    await until('stale', () => p.health().stale, Boolean);
    await expect(p.snapshot('')).rejects.toBeInstanceOf(ProviderUnavailableError);
    // Meanwhile the cluster changed, and forgot the history the cache would replay.
    cluster.kube.deletePod('one');
    cluster.kube.addPod(buildPod('two', SETTINGS, undefined, undefined));
    cluster.kube.compact();
    cluster.kube.addPod(buildPod('three', SETTINGS, undefined, undefined));
    await cluster.kube.up();
    await until(
      'current again',
      () => p.health().stale,
      (v) => v === undefined,
      10_000,
    );
    expect(p.informer.lists).toBe(2);
    expect((await p.snapshot('')).map((s) => s.name)).toEqual(['three', 'two']);
  });

  it('two pods of one session: one is used, the other reported once', async () => {
    cluster = await fakeCluster({ processes: false });
    const p = cluster.provider();
    const first = buildPod('dup', SETTINGS, undefined, undefined);
    cluster.kube.addPod(first);
    const second = buildPod('dup', SETTINGS, undefined, undefined);
    second.metadata!.name = 'dup-other';
    cluster.kube.addPod(second);
    await until(
      'both',
      () => Promise.resolve(p.informer.pods.size),
      (n) => n === 2,
    );
    expect(await p.snapshot('')).toHaveLength(1);
    const h = p.health();
    expect(h.warnings).toEqual([
      expect.stringMatching(/session dup has 2 pods: using dup, leaving dup-other/),
    ]);
    expect(p.health().warnings).toEqual([]);
    await p.stop('dup');
    expect(cluster.kube.podNames()).toEqual([]);
  });
});
