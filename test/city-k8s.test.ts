/**
 * The city end to end on Kubernetes, against the loopback fake API server:
 * `gc start` with `[session] provider = "k8s"`, a pool that scales up for
 * routed beads, the scripted worker running inside the "pods" (a real
 * process group with tmux each), every bead done once, and `gc stop`
 * deleting every pod.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { REPO, cityCli } from './helpers/cli.js';
import { FakeKube } from './helpers/fake-k8s.js';
import { until as waitUntil } from './helpers/wait.js';

const AGENTS = path.join(REPO, 'examples', 'agents');
const until = <T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean, ms = 90_000) =>
  waitUntil(what, probe, ok, ms, 250);

describe('city end to end (k8s, fake API server)', { timeout: 240_000 }, () => {
  let root = '';
  let kube: FakeKube | undefined;
  const { g, json } = cityCli(() => root);

  afterEach(async () => {
    if (root) await g('stop');
    await kube?.close();
    kube = undefined;
    if (root) await rm(root, { recursive: true, force: true });
    root = '';
  });

  it('a pool scales up in pods, its agents claim and close every bead once, gc stop deletes every pod', async () => {
    kube = await FakeKube.start();
    root = await mkdtemp(path.join(os.tmpdir(), 'gc-city-k8s-'));
    await writeFile(path.join(root, 'kubeconfig'), kube.kubeconfig(), { mode: 0o600 });
    await writeFile(
      path.join(root, 'city.toml'),
      `[workspace]
name = "kube"
max_active_sessions = 20
[session]
provider = "k8s"
[session.k8s]
image = "gc-agent:test"
kubeconfig = "kubeconfig"
[daemon]
patrol_interval = "500ms"
shutdown_timeout = "2s"
[[agent]]
name = "w"
start_command = "${AGENTS}/worker.sh"
max_active_sessions = 4
env = { GC_WORK_SECONDS = "1", GC_IDLE_SECONDS = "1" }
`,
    );
    const start = await g('start');
    expect(start.code, start.stderr).toBe(0);
    expect((await g('suspend')).code).toBe(0);
    const BEADS = 12;
    const ids: string[] = [];
    for (let i = 0; i < BEADS; i++) {
      ids.push((await json<{ id: string }>('bead', 'create', `task ${i}`, '--routed-to', 'w')).id);
    }
    expect((await g('resume')).code).toBe(0);
    // The pool scales up: one pod per session, labelled as Gas City labels them.
    const pods = await until(
      'the pool in pods',
      () => Promise.resolve(kube!.podNames()),
      (p) => p.length === 4,
    );
    expect(pods).toEqual(['w-1', 'w-2', 'w-3', 'w-4']);
    expect(kube.pod('w-1')).toMatchObject({
      metadata: { labels: { app: 'gc-agent', 'gc-session': 'w-1', 'gc-agent': 'w' } },
    });
    const done = await until(
      'every bead closed',
      () => json<{ id: string; status: string; close_reason?: string }[]>('bead', 'list', '--all'),
      (list) => list.filter((b) => b.status === 'closed').length === BEADS,
    );
    // Each bead once, by a pool session.
    for (const id of ids) {
      const b = done.find((x) => x.id === id)!;
      expect(b.close_reason).toMatch(/^done by w-\d$/);
    }
    const sessions = await json<{ controller: { sessions: { name: string; state: string }[] } }>(
      'status',
    );
    expect(sessions.controller.sessions.map((s) => s.name).sort()).toEqual(pods);
    // The server watches pods: no API call per steady tick (LIST once, then watches).
    expect(kube.count('list')).toBeLessThanOrEqual(2);

    const stop = await g('stop');
    expect(stop.code, stop.stderr).toBe(0);
    expect(kube.podNames()).toEqual([]);
  });
});
