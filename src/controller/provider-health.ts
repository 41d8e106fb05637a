/**
 * What the controller does with the provider's own health (ProviderHealth):
 * warnings become events, and a stale view of the sessions stops the tick
 * before it plans anything: no starts, no stops, no restarts on old data.
 * Entering and leaving that state are events; status shows it meanwhile.
 */
import { GcError, errorMessage } from '../core/index.js';
import type { Provider } from '../runtime/index.js';

export interface ProviderStale {
  since: number;
  reason: string;
}

type Record_ = (
  type: string,
  subject: string,
  payload: Record<string, unknown>,
  message: string,
) => Promise<unknown>;

export class ProviderHealthWatch {
  stale: ProviderStale | undefined;
  /** Why the last snapshot failed, until one succeeds. */
  private failing: string | undefined;

  constructor(
    private readonly provider: Provider,
    private readonly record: Record_,
  ) {}

  /**
   * The provider could not say which sessions exist: the tick acts on
   * nothing (the fleet is unknown) and is tried again at the next one. An
   * event says why, once per cause.
   */
  async snapshotFailed(err: unknown): Promise<void> {
    const why = errorMessage(err);
    if (why === this.failing) return;
    this.failing = why;
    await this.record(
      'controller.provider_failed',
      this.provider.name,
      { error: why },
      `session provider ${this.provider.name} could not list its sessions (${why}): nothing started or stopped this tick`,
    );
  }

  /** The tick's snapshot, with a failure recorded (snapshotFailed) before it ends the tick. */
  async snapshot<T>(take: () => Promise<T>): Promise<T> {
    let v: T;
    try {
      v = await take();
    } catch (e) {
      await this.snapshotFailed(e);
      throw e;
    }
    this.failing = undefined;
    return v;
  }

  /** Ask the provider; throws (ending the tick) while its view is stale. */
  async check(): Promise<void> {
    const h = this.provider.health?.();
    if (!h) return;
    for (const w of h.warnings) {
      await this.record('runtime.warning', this.provider.name, { warning: w }, w);
    }
    if (h.stale && !this.stale) {
      this.stale = h.stale;
      await this.record(
        'controller.provider_stale',
        this.provider.name,
        { since: h.stale.since, reason: h.stale.reason },
        `session provider ${this.provider.name} is stale (${h.stale.reason}): no starts or stops until it recovers`,
      );
    } else if (!h.stale && this.stale) {
      const was = this.stale;
      this.stale = undefined;
      await this.record(
        'controller.provider_recovered',
        this.provider.name,
        { stale_ms: Date.now() - was.since },
        `session provider ${this.provider.name} is current again after ${Math.round((Date.now() - was.since) / 1000)} s`,
      );
    }
    if (this.stale) {
      throw new GcError(
        'unavailable',
        `session provider ${this.provider.name} is stale since ${new Date(this.stale.since).toISOString()} (${this.stale.reason}); no starts or stops until it recovers`,
      );
    }
  }
}
