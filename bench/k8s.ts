/**
 * The k8s provider at fleet size, against the loopback fake API server
 * (test/helpers/fake-k8s.ts; pods that exist only in the API, no process):
 *
 * - sync_s: from opening the provider to its first answer with every pod
 *   in the cache (one LIST, then a watch).
 * - api_calls_per_steady_tick / tick_ms_p50: what the controller asks the
 *   provider each tick (snapshot of every session, plus is-running and
 *   list-running) over `TICKS` ticks with nothing changing: API calls
 *   counted at the PodApi seam, and the time it takes.
 * - informer_mb: heap held by the cache (after GC, before minus after).
 * - the baseline, in the same run on the same server: the pattern of
 *   polling providers, one LIST of every pod per tick plus, per session, a
 *   LIST by its label and an exec of `tmux has-session`.
 *   list_per_tick_calls = 1 + 2 x pods; list_only_ms_p50 is the bare LIST,
 *   measured each tick; the per-session probe is measured on
 *   `PROBE_SAMPLE` sessions and list_per_tick_ms_p50 = LIST + pods x probe
 *   (sequential, as such a provider's is-running calls are), because
 *   probing 10,000 sessions per tick for real takes minutes.
 * - tick_ratio = list_per_tick_ms_p50 / tick_ms_p50.
 *
 *   npx tsx bench/k8s.ts [--quick]
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { K8sProvider, buildPod, sanitizeName, type PodApi } from '../src/runtime/index.js';
import { fakeCluster } from '../test/helpers/k8s.js';
import { fatal, note, nowMs, percentile, quick, result, round } from './lib.js';

const PODS = quick ? 2_000 : 10_000;
const TICKS = 20;
const BASELINE_TICKS = quick ? 3 : 5;
const PROBE_SAMPLE = 100;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapMb = (): number => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 2 ** 20;
};

/** PodApi with a count of every call. */
function counted(api: PodApi): { api: PodApi; calls: () => number } {
  let n = 0;
  const wrap =
    <A extends unknown[], R>(f: (...a: A) => Promise<R>) =>
    (...a: A): Promise<R> => {
      n++;
      return f(...a);
    };
  return {
    api: {
      list: wrap((s: string) => api.list(s)),
      watch: wrap((s, rv, ev, done) => api.watch(s, rv, ev, done)),
      create: wrap((p) => api.create(p)),
      get: wrap((name: string) => api.get(name)),
      delete: wrap((name: string, g: number) => api.delete(name, g)),
      log: wrap((name: string, c: string, t?: number) => api.log(name, c, t)),
      exec: wrap((name: string, c: string, argv: readonly string[], stdin?: Buffer | string) =>
        api.exec(name, c, argv, stdin),
      ),
    },
    calls: () => n,
  };
}

async function main(): Promise<void> {
  const cluster = await fakeCluster({ processes: false });
  try {
    note(`adding ${PODS} pods to the fake API server`);
    const settings = {
      namespace: 'gc',
      image: 'gc-agent:bench',
      cpuRequest: '500m',
      memRequest: '1Gi',
      cpuLimit: '2',
      memLimit: '4Gi',
      graceSeconds: 5,
    };
    cluster.kube.addVirtualPods(PODS, (i) => buildPod(`agent-${i}`, settings, '/city', 'agent'));

    const heap0 = heapMb();
    const c = counted(cluster.api);
    const t0 = nowMs();
    const provider = new K8sProvider({
      api: c.api,
      namespace: 'gc',
      image: 'gc-agent:bench',
      activityRefreshMs: 0,
    });
    const first = await provider.snapshot('');
    const syncS = (nowMs() - t0) / 1000;
    if (first.length !== PODS) throw new Error(`synced ${first.length} of ${PODS} sessions`);
    const informerMb = heapMb() - heap0;
    note(`synced ${PODS} pods in ${round(syncS)} s`);

    // Let the watch open before counting.
    await new Promise((r) => setTimeout(r, 500));
    const calls0 = c.calls();
    const tickMs: number[] = [];
    for (let i = 0; i < TICKS; i++) {
      const t = nowMs();
      const snap = await provider.snapshot('');
      await provider.isRunning(snap[i]!.name);
      await provider.listRunning('agent-1');
      tickMs.push(nowMs() - t);
    }
    const perTick = (c.calls() - calls0) / TICKS;
    await provider.close();

    // The baseline on the same server.
    const listMs: number[] = [];
    for (let i = 0; i < BASELINE_TICKS; i++) {
      const t = nowMs();
      const l = await cluster.api.list('app=gc-agent');
      if (l.items.length !== PODS) throw new Error('baseline list short');
      listMs.push(nowMs() - t);
    }
    const probeMs: number[] = [];
    for (let i = 0; i < PROBE_SAMPLE; i++) {
      const name = `agent-${(i * 97) % PODS}`;
      const t = nowMs();
      await cluster.api.list(`gc-session=${sanitizeName(name)}`);
      await cluster.api.exec(sanitizeName(name), 'agent', ['tmux', 'has-session', '-t', 'main']);
      probeMs.push(nowMs() - t);
    }
    const probe = probeMs.reduce((a, b) => a + b, 0) / probeMs.length;
    const listOnly = percentile(listMs, 50);
    const baseline = listOnly + PODS * probe;
    const tick = percentile(tickMs, 50);
    result({
      bench: 'k8s',
      pods: PODS,
      sync_s: round(syncS),
      api_calls_per_steady_tick: perTick,
      tick_ms_p50: round(tick),
      tick_ms_max: round(Math.max(...tickMs)),
      informer_mb: round(informerMb, 1),
      list_per_tick_calls: 1 + 2 * PODS,
      list_only_ms_p50: round(listOnly),
      probe_ms_mean: round(probe),
      probe_sample: PROBE_SAMPLE,
      list_per_tick_ms_p50: round(baseline),
      tick_ratio: round(baseline / tick, 0),
      quick,
    });
  } finally {
    await cluster.close();
  }
}

main().catch(fatal);
