import { runRuntimeConformance } from './conformance.js';
import { fakeCluster } from '../../test/helpers/k8s.js';

runRuntimeConformance('k8s (fake API server, real tmux in each pod)', async () => {
  const cluster = await fakeCluster();
  return { provider: cluster.provider(), teardown: () => cluster.close() };
});
