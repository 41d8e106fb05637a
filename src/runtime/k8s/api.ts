/**
 * The narrow slice of the Kubernetes API the k8s provider uses: pods in one
 * namespace (list, watch, create, get, delete, log) and exec. The provider
 * and its informer know only this interface; `client.ts` implements it on
 * @kubernetes/client-node, tests wrap it to count or break calls.
 */
import type { V1Pod } from '@kubernetes/client-node';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';

/** An ERROR event's object (a `Status`); code 410 means the resourceVersion is too old. */
export interface WatchStatus {
  code?: number;
  reason?: string;
  message?: string;
}

export interface PodList {
  items: V1Pod[];
  resourceVersion: string;
}

export interface WatchHandle {
  /** End the watch; `onDone` is then called with no error. */
  abort(): void;
}

export interface ExecResult {
  /** The command's exit status (0 on success). */
  code: number;
  stdout: Buffer;
  stderr: string;
  /** The failure message when the API, not the command, failed. */
  error?: string;
}

export interface PodApi {
  /** The pods matching `labelSelector`, with the list's resourceVersion. */
  list(labelSelector: string): Promise<PodList>;
  /**
   * Watch from `resourceVersion`. Resolves once the server accepted the
   * watch; rejects when it could not be opened. `onEvent` gets each event in
   * order; `onDone` is called once when the stream ends (with the error
   * that ended it, if any).
   */
  watch(
    labelSelector: string,
    resourceVersion: string,
    onEvent: (type: WatchEventType, object: V1Pod | WatchStatus) => void,
    onDone: (err?: unknown) => void,
  ): Promise<WatchHandle>;
  create(pod: V1Pod): Promise<V1Pod>;
  /** Undefined when there is no such pod. */
  get(name: string): Promise<V1Pod | undefined>;
  /** Delete with a grace period. False when there was no such pod. */
  delete(name: string, graceSeconds: number): Promise<boolean>;
  /** The container's output (its last lines when `tailLines` is given). "" when absent. */
  log(name: string, container: string, tailLines?: number): Promise<string>;
  /** Run `argv` in the container, `stdin` fed then closed. Never rejects: failures are in the result. */
  exec(
    name: string,
    container: string,
    argv: readonly string[],
    stdin?: Buffer | string,
  ): Promise<ExecResult>;
}

/** An API error's HTTP status, when it carries one. */
export function httpStatus(err: unknown): number | undefined {
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; statusCode?: unknown; response?: { statusCode?: unknown } };
    for (const v of [e.code, e.statusCode, e.response?.statusCode]) {
      if (typeof v === 'number') return v;
    }
  }
  return undefined;
}
