/**
 * PodApi on @kubernetes/client-node: REST calls over kept-alive
 * connections, watch as a streamed NDJSON response, exec over the WebSocket
 * channel protocol (v5.channel.k8s.io, with v4 as the fallback the library
 * negotiates). Configuration: in-cluster when gc runs in a pod, else the
 * kubeconfig file (`kubeconfig`, $KUBECONFIG, ~/.kube/config) and context.
 */
import { existsSync } from 'node:fs';
import { Writable, Readable } from 'node:stream';
import type * as K8s from '@kubernetes/client-node';
import type { CoreV1Api, Exec, KubeConfig, V1Pod, V1Status, Watch } from '@kubernetes/client-node';
import { errorMessage } from '../../core/index.js';
import { ProviderUnavailableError } from '../errors.js';
import type {
  ExecResult,
  PodApi,
  PodList,
  WatchHandle,
  WatchEventType,
  WatchStatus,
} from './api.js';
import { httpStatus } from './api.js';

const IN_CLUSTER_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export interface KubeOptions {
  kubeconfig?: string;
  context?: string;
}

type Lib = typeof K8s;
let libLoad: Promise<Lib> | undefined;
/** The client library, loaded the first time a k8s provider talks to a cluster (it is large). */
const lib = (): Promise<Lib> => (libLoad ??= import('@kubernetes/client-node'));

/** The cluster gc talks to: its own when in a pod, else the kubeconfig's. */
export async function loadKubeConfig(o: KubeOptions): Promise<KubeConfig> {
  const k = await lib();
  const kc = new k.KubeConfig();
  try {
    if (o.kubeconfig) kc.loadFromFile(o.kubeconfig);
    else if (process.env.KUBERNETES_SERVICE_HOST && existsSync(IN_CLUSTER_TOKEN)) {
      kc.loadFromCluster();
    } else kc.loadFromDefault();
    if (o.context) kc.setCurrentContext(o.context);
  } catch (e) {
    throw new ProviderUnavailableError('k8s', `no usable kubeconfig: ${errorMessage(e)}`, {
      fix: 'set [session.k8s] kubeconfig or $KUBECONFIG, or run gc inside the cluster',
    });
  }
  if (!kc.getCurrentCluster()) {
    throw new ProviderUnavailableError('k8s', 'the kubeconfig names no current cluster', {
      fix: 'set [session.k8s] context (GC_K8S_CONTEXT) to one of its contexts',
    });
  }
  return kc;
}

interface Clients {
  core: CoreV1Api;
  watcher: Watch;
  execer: Exec;
}

export class ClientPodApi implements PodApi {
  private ready: Promise<Clients> | undefined;

  constructor(
    private readonly kube: KubeOptions,
    private readonly namespace: string,
  ) {}

  /** The API clients, made on first use; a failed attempt is tried again next time. */
  private clients(): Promise<Clients> {
    this.ready ??= (async () => {
      const k = await lib();
      const kc = await loadKubeConfig(this.kube);
      return {
        core: kc.makeApiClient(k.CoreV1Api),
        watcher: new k.Watch(kc),
        execer: new k.Exec(kc),
      };
    })().catch((e: unknown) => {
      this.ready = undefined;
      throw e;
    });
    return this.ready;
  }

  async list(labelSelector: string): Promise<PodList> {
    const { core } = await this.clients();
    const r = await core.listNamespacedPod({ namespace: this.namespace, labelSelector });
    return { items: r.items, resourceVersion: r.metadata?.resourceVersion ?? '' };
  }

  async watch(
    labelSelector: string,
    resourceVersion: string,
    onEvent: (type: WatchEventType, object: V1Pod | WatchStatus) => void,
    onDone: (err?: unknown) => void,
  ): Promise<WatchHandle> {
    let failed: unknown;
    let opening = true;
    const { watcher } = await this.clients();
    const controller = await watcher.watch(
      `/api/v1/namespaces/${encodeURIComponent(this.namespace)}/pods`,
      { labelSelector, resourceVersion, allowWatchBookmarks: true },
      (type: string, object: V1Pod | WatchStatus) => onEvent(type as WatchEventType, object),
      (err: unknown) => {
        if (opening && err) failed = err;
        else onDone(err ?? undefined);
      },
    );
    opening = false;
    if (failed !== undefined)
      throw failed instanceof Error ? failed : new Error(errorMessage(failed));
    return { abort: () => controller.abort() };
  }

  async create(pod: V1Pod): Promise<V1Pod> {
    const { core } = await this.clients();
    return core.createNamespacedPod({ namespace: this.namespace, body: pod });
  }

  async get(name: string): Promise<V1Pod | undefined> {
    const { core } = await this.clients();
    try {
      return await core.readNamespacedPod({ name, namespace: this.namespace });
    } catch (e) {
      if (httpStatus(e) === 404) return undefined;
      throw e;
    }
  }

  async delete(name: string, graceSeconds: number): Promise<boolean> {
    const { core } = await this.clients();
    try {
      await core.deleteNamespacedPod({
        name,
        namespace: this.namespace,
        gracePeriodSeconds: graceSeconds,
      });
      return true;
    } catch (e) {
      if (httpStatus(e) === 404) return false;
      throw e;
    }
  }

  async log(name: string, container: string, tailLines?: number): Promise<string> {
    const { core } = await this.clients();
    try {
      return await core.readNamespacedPodLog({
        name,
        namespace: this.namespace,
        container,
        ...(tailLines === undefined ? {} : { tailLines }),
      });
    } catch (e) {
      if (httpStatus(e) === 404 || httpStatus(e) === 400) return '';
      throw e;
    }
  }

  exec(
    name: string,
    container: string,
    argv: readonly string[],
    stdin?: Buffer | string,
  ): Promise<ExecResult> {
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const sink = (into: Buffer[]) =>
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          into.push(Buffer.from(chunk));
          cb();
        },
      });
    return new Promise<ExecResult>((resolve) => {
      let status: V1Status | undefined;
      let settled = false;
      const finish = (error?: string) => {
        if (settled) return;
        settled = true;
        resolve({
          code: error ? -1 : exitCodeOf(status),
          stdout: Buffer.concat(out),
          stderr: Buffer.concat(err).toString('utf8'),
          ...(error
            ? { error }
            : status?.status === 'Failure' && !isExitStatus(status)
              ? { error: status.message ?? 'exec failed' }
              : {}),
        });
      };
      const input = stdin === undefined ? null : Readable.from([Buffer.from(stdin)]);
      this.clients()
        .then(({ execer }) =>
          execer.exec(
            this.namespace,
            name,
            container,
            [...argv],
            sink(out),
            sink(err),
            input,
            false,
            (s) => {
              status = s;
            },
          ),
        )
        .then(
          (ws) => {
            ws.on('close', () =>
              finish(status ? undefined : 'the exec stream closed without a status'),
            );
            ws.on('error', (e: Error) => finish(errorMessage(e)));
          },
          (e: unknown) => finish(errorMessage(e)),
        );
    });
  }
}

function isExitStatus(s: V1Status): boolean {
  return s.reason === 'NonZeroExitCode';
}

/** A status channel message as an exit status: Success 0, NonZeroExitCode its code. */
export function exitCodeOf(s: V1Status | undefined): number {
  if (!s) return -1;
  if (s.status === 'Success') return 0;
  const cause = s.details?.causes?.find((c) => c.reason === 'ExitCode');
  const code = Number(cause?.message);
  return Number.isInteger(code) ? code : -1;
}
