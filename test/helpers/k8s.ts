/** A k8s provider on the fake API server, for tests and benches. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  ClientPodApi,
  K8sProvider,
  type K8sProviderOptions,
  type PodApi,
} from '../../src/runtime/index.js';
import { FakeKube, type FakeK8sOptions } from './fake-k8s.js';

export interface FakeCluster {
  kube: FakeKube;
  /** A kubeconfig file naming the fake server. */
  kubeconfig: string;
  api: PodApi;
  provider(o?: Partial<K8sProviderOptions>): K8sProvider;
  close(): Promise<void>;
}

export async function fakeCluster(o: FakeK8sOptions = {}): Promise<FakeCluster> {
  const kube = await FakeKube.start(o);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'gc-kc-'));
  const kubeconfig = path.join(dir, 'kubeconfig');
  await writeFile(kubeconfig, kube.kubeconfig(), { mode: 0o600 });
  const api = new ClientPodApi({ kubeconfig }, 'gc');
  const providers: K8sProvider[] = [];
  return {
    kube,
    kubeconfig,
    api,
    provider: (p = {}) => {
      const provider = new K8sProvider({
        api,
        namespace: 'gc',
        image: 'gc-agent:test',
        stopGraceMs: 1000,
        activityRefreshMs: 0,
        backoffMs: 50,
        ...p,
      });
      providers.push(provider);
      return provider;
    },
    close: async () => {
      for (const p of providers) await p.close();
      await kube.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
