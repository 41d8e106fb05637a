/**
 * A provider that counts the calls made to the provider it wraps, method by
 * method, and forwards them unchanged. The controller measures its ticks
 * with it and benchmarks compare call patterns with it: the count is taken
 * at the provider's interface, not kept by the caller.
 */
import type {
  Provider,
  ProviderCapabilities,
  ProviderHealth,
  SessionSnapshot,
  StartConfig,
  StartOptions,
  StartRequest,
  StartedEach,
} from './provider.js';

/** Provider methods that count as calls (everything but `close`). */
export type ProviderMethod = Exclude<
  {
    [K in keyof Provider]: Provider[K] extends (...args: never[]) => unknown ? K : never;
  }[keyof Provider],
  'close'
>;

export class CountingProvider implements Provider {
  readonly name: string;
  readonly capabilities: ProviderCapabilities;
  /** Calls per method since construction (or `reset`). */
  readonly counts = new Map<ProviderMethod, number>();
  private sum = 0;

  constructor(readonly inner: Provider) {
    this.name = inner.name;
    this.capabilities = inner.capabilities;
    if (inner.health) this.health = () => inner.health!();
    if (inner.startMany) {
      this.startMany = (requests, onEach) => {
        this.count('start');
        return inner.startMany!(requests, onEach);
      };
    }
    if (inner.stopMany) {
      this.stopMany = (names) => {
        this.count('stop');
        return inner.stopMany!(names);
      };
    }
    if (inner.interruptMany) {
      this.interruptMany = (names) => {
        this.count('interrupt');
        return inner.interruptMany!(names);
      };
    }
    if (inner.nudgeMany) {
      this.nudgeMany = (names, text) => {
        this.count('nudge');
        return inner.nudgeMany!(names, text);
      };
    }
  }

  /** Every counted call so far. */
  get total(): number {
    return this.sum;
  }

  reset(): void {
    this.counts.clear();
    this.sum = 0;
  }

  private count(method: ProviderMethod): void {
    this.counts.set(method, (this.counts.get(method) ?? 0) + 1);
    this.sum++;
  }

  start(name: string, config: StartConfig, options?: StartOptions): Promise<void> {
    this.count('start');
    return this.inner.start(name, config, options);
  }
  stop(name: string): Promise<void> {
    this.count('stop');
    return this.inner.stop(name);
  }
  /** Forwarded when the inner provider has it; one call, counted as one start. */
  health?: () => ProviderHealth;
  startMany?: (
    requests: readonly StartRequest[],
    onEach?: StartedEach,
  ) => Promise<(Error | undefined)[]>;
  /** Forwarded when the inner provider has it; one call, counted as one stop. */
  stopMany?: (names: readonly string[]) => Promise<void>;
  interruptMany?: (names: readonly string[]) => Promise<void>;
  nudgeMany?: (names: readonly string[], text: string) => Promise<void>;
  interrupt(name: string): Promise<void> {
    this.count('interrupt');
    return this.inner.interrupt(name);
  }
  isRunning(name: string): Promise<boolean> {
    this.count('isRunning');
    return this.inner.isRunning(name);
  }
  isAttached(name: string): Promise<boolean> {
    this.count('isAttached');
    return this.inner.isAttached(name);
  }
  attach(name: string): Promise<void> {
    this.count('attach');
    return this.inner.attach(name);
  }
  processAlive(name: string, names: readonly string[]): Promise<boolean> {
    this.count('processAlive');
    return this.inner.processAlive(name, names);
  }
  nudge(name: string, text: string): Promise<void> {
    this.count('nudge');
    return this.inner.nudge(name, text);
  }
  setMeta(name: string, key: string, value: string): Promise<void> {
    this.count('setMeta');
    return this.inner.setMeta(name, key, value);
  }
  getMeta(name: string, key: string): Promise<string> {
    this.count('getMeta');
    return this.inner.getMeta(name, key);
  }
  removeMeta(name: string, key: string): Promise<void> {
    this.count('removeMeta');
    return this.inner.removeMeta(name, key);
  }
  peek(name: string, lines: number): Promise<string> {
    this.count('peek');
    return this.inner.peek(name, lines);
  }
  listRunning(prefix: string): Promise<string[]> {
    this.count('listRunning');
    return this.inner.listRunning(prefix);
  }
  snapshot(prefix: string): Promise<SessionSnapshot[]> {
    this.count('snapshot');
    return this.inner.snapshot(prefix);
  }
  getLastActivity(name: string): Promise<number> {
    this.count('getLastActivity');
    return this.inner.getLastActivity(name);
  }
  clearScrollback(name: string): Promise<void> {
    this.count('clearScrollback');
    return this.inner.clearScrollback(name);
  }
  copyTo(name: string, src: string, relDst: string): Promise<void> {
    this.count('copyTo');
    return this.inner.copyTo(name, src, relDst);
  }
  sendKeys(name: string, keys: readonly string[]): Promise<void> {
    this.count('sendKeys');
    return this.inner.sendKeys(name, keys);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
