/**
 * The k8s provider's view of its sessions: the informer's pods indexed by
 * session, the activity times it learned, and the warnings it gathered.
 * Everything here answers from memory; `exec` is the one way in to a pod.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { ProviderUnavailableError } from '../errors.js';
import type { ProviderHealth } from '../provider.js';
import type { ExecResult, PodApi } from './api.js';
import { PodInformer } from './informer.js';
import { APP_LABEL, APP_VALUE, CONTAINER, pickPod, sessionOfPod, viewPod } from './pod-spec.js';

/** How long a first question waits for the first list of pods. */
const SYNC_WAIT_MS = 15_000;

export class PodCache {
  readonly informer: PodInformer;
  /** Session name -> names of its pods. */
  protected readonly bySession = new Map<string, Set<string>>();
  /** Last known activity (epoch ms) per session, from the start exec and activity execs. */
  protected readonly activity = new Map<string, number>();
  /** When each session's activity was last asked of its pod. */
  protected readonly probed = new Map<string, number>();
  private readonly warned = new Set<string>();
  private readonly warnings: string[] = [];

  constructor(
    protected readonly api: PodApi,
    protected readonly namespace: string,
    backoffMs: number | undefined,
  ) {
    this.informer = new PodInformer(api, `${APP_LABEL}=${APP_VALUE}`, {
      ...(backoffMs === undefined ? {} : { backoffMs }),
      onPod: (pod, before, after) => this.index(pod, before, after),
    });
    this.informer.start();
  }

  // -- the cache --------------------------------------------------------

  protected index(podName: string, before: V1Pod | undefined, after: V1Pod | undefined): void {
    const was = before && sessionOfPod(before);
    const now = after && sessionOfPod(after);
    if (was && was !== now) {
      const set = this.bySession.get(was);
      set?.delete(podName);
      if (set && !set.size) {
        this.bySession.delete(was);
        this.activity.delete(was);
        this.probed.delete(was);
      }
    }
    if (now) {
      let set = this.bySession.get(now);
      if (!set) this.bySession.set(now, (set = new Set()));
      set.add(podName);
      if (set.size > 1) this.warnTwice(now, set);
    }
  }

  protected warnTwice(session: string, pods: Set<string>): void {
    const all = [...pods].map((n) => this.informer.pods.get(n)).filter((p) => p !== undefined);
    const kept = pickPod(all)?.metadata?.name ?? '';
    const others = [...pods].filter((n) => n !== kept).sort();
    const key = `${session}:${others.join(',')}`;
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.warnings.push(
      `session ${session} has ${pods.size} pods: using ${kept}, leaving ${others.join(', ')} alone (delete the extra pods by hand)`,
    );
  }

  protected podsOf(name: string): V1Pod[] {
    return [...(this.bySession.get(name) ?? [])]
      .map((n) => this.informer.pods.get(n))
      .filter((p): p is V1Pod => p !== undefined);
  }

  protected podOf(name: string): V1Pod | undefined {
    return pickPod(this.podsOf(name));
  }

  /** The pod of a session whose tmux an exec can reach, if any. */
  protected runningPod(name: string): string | undefined {
    const pod = this.podOf(name);
    return pod && viewPod(pod).running ? pod.metadata?.name : undefined;
  }

  protected async synced(): Promise<void> {
    if (this.informer.synced) return;
    const ok = await this.informer.whenSynced(Date.now() + SYNC_WAIT_MS);
    if (!ok) {
      throw new ProviderUnavailableError(
        'k8s',
        `cannot list pods in namespace ${this.namespace}: ${this.informer.staleReason ?? 'no answer'}`,
        { fix: 'check the kubeconfig, the context and that the API server is reachable' },
      );
    }
  }

  protected requireFresh(): void {
    const why = this.informer.staleReason;
    if (why !== undefined) {
      const since = new Date(this.informer.staleSince).toISOString();
      throw new ProviderUnavailableError('k8s', `pod cache stale since ${since} (${why})`, {
        details: { stale_since: since },
        fix: 'gc retries on its own; check that the API server is reachable',
      });
    }
  }

  health(): ProviderHealth {
    const why = this.informer.staleReason;
    return {
      ...(why !== undefined && this.informer.synced
        ? { stale: { since: this.informer.staleSince, reason: why } }
        : {}),
      warnings: this.warnings.splice(0),
    };
  }

  protected async exec(
    pod: string,
    argv: readonly string[],
    stdin?: Buffer | string,
  ): Promise<ExecResult> {
    return this.api.exec(pod, CONTAINER, argv, stdin);
  }
}
