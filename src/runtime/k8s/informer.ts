/**
 * The city's pods, kept current by list + watch: list once, then watch from
 * the list's resourceVersion; a watch that ends is reopened from the last
 * version seen; `410 Gone` (that version is too old) means list again; a
 * failure to list or watch marks the cache stale and retries with backoff.
 * Readers (snapshot, is-running, waits for a pod to run or go) answer from
 * the cache and from events: no API call per question.
 */
import type { V1Pod } from '@kubernetes/client-node';
import { errorMessage } from '../../core/index.js';
import type { PodApi, WatchEventType, WatchHandle, WatchStatus } from './api.js';

export interface InformerOptions {
  /** First retry delay after a failure; doubles up to maxBackoffMs. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** Told of every state change (for events and status). */
  onState?: (stale: boolean, reason: string) => void;
  /** Told of every pod that appears, changes (both set) or goes (after unset). */
  onPod?: (name: string, before: V1Pod | undefined, after: V1Pod | undefined) => void;
}

type Waiter = { check: () => boolean; resolve: () => void };

export class PodInformer {
  readonly pods = new Map<string, V1Pod>();
  /** Set once the first list succeeded. */
  synced = false;
  /** Why the cache may be behind the cluster; undefined when it is current. */
  staleReason: string | undefined = 'not listed yet';
  staleSince = Date.now();
  /** Lists done (the first and every relist). */
  lists = 0;
  private rv = '';
  private handle: WatchHandle | undefined;
  private closed = false;
  private backoff: number;
  private timer: NodeJS.Timeout | undefined;
  private readonly waiters = new Set<Waiter>();
  private syncedWaiters: (() => void)[] = [];
  /** Bumped by every (re)connect: events of an older watch are ignored. */
  private generation = 0;

  constructor(
    private readonly api: PodApi,
    private readonly selector: string,
    private readonly o: InformerOptions = {},
  ) {
    this.backoff = o.backoffMs ?? 200;
  }

  /** Begin listing and watching; resolves at once (see `whenSynced`). */
  start(): void {
    this.connect(true);
  }

  /** Resolves once the first list is in the cache, or at `deadline` (false). */
  whenSynced(deadline: number): Promise<boolean> {
    if (this.synced) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now()));
      this.syncedWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  /**
   * Resolves true once `check()` holds (checked now and after every change
   * to the cache), false at `deadline`. For "until the pod runs" and
   * "until it is gone": no polling.
   */
  until(check: () => boolean, deadline: number): Promise<boolean> {
    if (check()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const w: Waiter = {
        check,
        resolve: () => {
          clearTimeout(t);
          this.waiters.delete(w);
          resolve(true);
        },
      };
      const t = setTimeout(
        () => {
          this.waiters.delete(w);
          resolve(false);
        },
        Math.max(0, deadline - Date.now()),
      );
      this.waiters.add(w);
    });
  }

  /** Put a pod the API just returned (create) into the cache ahead of its event. */
  observe(pod: V1Pod): void {
    this.apply('ADDED', pod);
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.handle?.abort();
    this.handle = undefined;
  }

  private connect(relist: boolean): void {
    if (this.closed) return;
    const gen = ++this.generation;
    this.handle?.abort();
    this.handle = undefined;
    void_(this.run(gen, relist));
  }

  private async run(gen: number, relist: boolean): Promise<void> {
    try {
      if (relist || !this.rv) {
        const list = await this.api.list(this.selector);
        if (gen !== this.generation || this.closed) return;
        this.lists++;
        const seen = new Set<string>();
        for (const pod of list.items) {
          const name = pod.metadata?.name;
          if (!name) continue;
          seen.add(name);
          this.set(name, pod);
        }
        for (const name of [...this.pods.keys()]) if (!seen.has(name)) this.set(name, undefined);
        this.rv = list.resourceVersion;
        this.fresh();
        this.markSynced();
        this.changed();
      }
      const handle = await this.api.watch(
        this.selector,
        this.rv,
        (type, object) => {
          if (gen === this.generation) this.onEvent(gen, type, object);
        },
        (err) => {
          if (gen !== this.generation || this.closed) return;
          if (err) this.fail(gen, `watch ended: ${errorMessage(err)}`);
          else this.connect(false);
        },
      );
      if (gen !== this.generation || this.closed) {
        handle.abort();
        return;
      }
      this.handle = handle;
      this.backoff = this.o.backoffMs ?? 200;
      this.fresh();
    } catch (e) {
      if (gen === this.generation && !this.closed) {
        this.fail(gen, `${relist || !this.rv ? 'list' : 'watch'} failed: ${errorMessage(e)}`);
      }
    }
  }

  private onEvent(gen: number, type: WatchEventType, object: V1Pod | WatchStatus): void {
    if (type === 'ERROR') {
      const status = object as WatchStatus;
      if (status.code === 410) {
        // Our resourceVersion is older than the server keeps: list again.
        this.rv = '';
        this.connect(true);
      } else {
        this.fail(gen, `watch error: ${status.message ?? status.reason ?? 'unknown'}`);
      }
      return;
    }
    const pod = object as V1Pod;
    const rv = pod.metadata?.resourceVersion;
    if (rv) this.rv = rv;
    if (type === 'BOOKMARK') return;
    this.apply(type, pod);
  }

  private apply(type: WatchEventType, pod: V1Pod): void {
    const name = pod.metadata?.name;
    if (!name) return;
    if (type === 'DELETED') this.set(name, undefined);
    else {
      const had = this.pods.get(name);
      // An event older than what the cache holds (the create answer came first) is skipped.
      if (had && olderThan(pod, had)) return;
      this.set(name, pod);
    }
    this.changed();
  }

  private set(name: string, pod: V1Pod | undefined): void {
    const before = this.pods.get(name);
    if (pod) this.pods.set(name, pod);
    else if (before) this.pods.delete(name);
    else return;
    this.o.onPod?.(name, before, pod);
  }

  private fail(gen: number, reason: string): void {
    this.handle?.abort();
    this.handle = undefined;
    if (this.staleReason === undefined) {
      this.staleReason = reason;
      this.staleSince = Date.now();
      this.o.onState?.(true, reason);
    } else this.staleReason = reason;
    const wait = this.backoff;
    this.backoff = Math.min(this.backoff * 2, this.o.maxBackoffMs ?? 5000);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (gen === this.generation) this.connect(!this.rv);
    }, wait);
    this.timer.unref();
  }

  private fresh(): void {
    if (this.staleReason !== undefined) {
      const was = this.staleReason;
      this.staleReason = undefined;
      if (this.synced) this.o.onState?.(false, was);
    }
  }

  private markSynced(): void {
    if (this.synced) return;
    this.synced = true;
    for (const w of this.syncedWaiters.splice(0)) w();
  }

  private changed(): void {
    for (const w of [...this.waiters]) if (w.check()) w.resolve();
  }
}

function olderThan(a: V1Pod, b: V1Pod): boolean {
  const ra = Number(a.metadata?.resourceVersion);
  const rb = Number(b.metadata?.resourceVersion);
  return Number.isFinite(ra) && Number.isFinite(rb) && ra < rb;
}

/** Run a promise whose failures it handles itself. */
function void_(p: Promise<void>): void {
  p.catch(() => undefined);
}
