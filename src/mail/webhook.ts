/**
 * Push delivery of mail to external agents that registered a webhook URL.
 * The message is always stored in the recipient's inbox first; a push that
 * fails (after retries), is refused by policy, finds the circuit open or the
 * queue full leaves it there, so nothing is lost.
 *
 * - HTTPS only; the host is resolved once and the connection goes to the
 *   checked address (no DNS rebinding), and private, loopback, link-local
 *   and other internal addresses are refused unless explicitly allowed.
 * - A bounded pool of workers drains a bounded queue.
 * - Retries with exponential backoff and jitter on network errors, 5xx, 408
 *   and 429; other 4xx are final.
 * - A circuit breaker per recipient: after `breakerThreshold` failed
 *   deliveries in a row, pushes to it are skipped for `breakerCooldownMs`,
 *   then one trial delivery decides.
 */
import { lookup } from 'node:dns/promises';
import { isPrivateAddress } from './address.js';

export { isPrivateAddress };
import { request } from 'node:https';
import { isIP } from 'node:net';
import { errorMessage } from '../core/index.js';
import type { Message } from './mail.js';

export type DeliveryOutcome =
  'delivered' | 'failed' | 'refused' | 'circuit_open' | 'queue_full' | 'stopped';

export interface DeliveryResult {
  message: Message;
  /** Set for an alert's push: what was sent instead of the message. */
  alert?: Record<string, unknown>;
  url: string;
  outcome: DeliveryOutcome;
  attempts: number;
  /** Why it was not delivered (no secrets: the URL's query is not included). */
  error?: string;
}

export interface WebhookOptions {
  workers?: number;
  queueMax?: number;
  allowPrivate?: boolean;
  timeoutMs?: number;
  maxAttempts?: number;
  backoffMs?: number;
  breakerThreshold?: number;
  breakerCooldownMs?: number;
  /** Extra CA certificates to trust (tests, private CAs). */
  ca?: string | Buffer;
  onResult?: (r: DeliveryResult) => void;
  /** Clock, for the breaker (tests). */
  now?: () => number;
}

/** Why a webhook URL is refused, or undefined when it may be used (before DNS). */
export function webhookUrlProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'not a URL';
  }
  if (u.protocol !== 'https:') return 'must be an https:// URL';
  if (u.username || u.password) return 'must not carry credentials';
  return undefined;
}

/** A URL for logs and events: origin and path, never the query (tokens live there). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return '(invalid url)';
  }
}

interface Job {
  url: string;
  message: Message;
  alert?: Record<string, unknown>;
}

interface Breaker {
  failures: number;
  openUntil: number;
}

class HttpStatusError extends Error {
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class WebhookDelivery {
  private readonly queue: Job[] = [];
  private readonly breakers = new Map<string, Breaker>();
  private active = 0;
  private stopped = false;
  private readonly idle: (() => void)[] = [];
  private readonly o: Required<Omit<WebhookOptions, 'ca' | 'onResult'>> &
    Pick<WebhookOptions, 'ca' | 'onResult'>;

  constructor(options: WebhookOptions = {}) {
    this.o = {
      workers: options.workers ?? 8,
      queueMax: options.queueMax ?? 10_000,
      allowPrivate: options.allowPrivate ?? false,
      timeoutMs: options.timeoutMs ?? 5000,
      maxAttempts: options.maxAttempts ?? 4,
      backoffMs: options.backoffMs ?? 500,
      breakerThreshold: options.breakerThreshold ?? 5,
      breakerCooldownMs: options.breakerCooldownMs ?? 60_000,
      now: options.now ?? Date.now,
      ...(options.ca !== undefined ? { ca: options.ca } : {}),
      ...(options.onResult ? { onResult: options.onResult } : {}),
    };
  }

  /** Jobs waiting plus in flight. */
  get pending(): number {
    return this.queue.length + this.active;
  }

  /**
   * Queue a push. Returns false (and reports queue_full) when the queue is
   * full. With `alert`, the body is `{type: "alert", alert}` (an alert
   * route); `message` then only names the push for breakers and reports.
   */
  enqueue(url: string, message: Message, alert?: Record<string, unknown>): boolean {
    const job: Job = { url, message, ...(alert ? { alert } : {}) };
    if (this.stopped) {
      this.report({ ...job, outcome: 'stopped', attempts: 0 });
      return false;
    }
    if (this.queue.length >= this.o.queueMax) {
      this.report({ ...job, outcome: 'queue_full', attempts: 0 });
      return false;
    }
    this.queue.push(job);
    this.pump();
    return true;
  }

  /** Resolves when nothing is queued or in flight. */
  drained(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  /** Stop taking work; queued jobs are reported as stopped (they stay in the inbox). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const job of this.queue.splice(0)) {
      this.report({ ...job, outcome: 'stopped', attempts: 0 });
    }
    await this.drained();
  }

  private report(r: DeliveryResult): void {
    try {
      this.o.onResult?.(r);
    } catch {
      // a reporting failure must not stop delivery
    }
  }

  private pump(): void {
    while (this.active < this.o.workers && this.queue.length) {
      const job = this.queue.shift()!;
      this.active++;
      this.run(job)
        .catch((e: unknown) =>
          this.report({ ...job, outcome: 'failed', attempts: 0, error: errorMessage(e) }),
        )
        .finally(() => {
          this.active--;
          if (this.pending === 0) for (const r of this.idle.splice(0)) r();
          else this.pump();
        })
        .catch(() => undefined);
    }
  }

  private async run(job: Job): Promise<void> {
    const who = job.message.to;
    const b = this.breakers.get(who) ?? { failures: 0, openUntil: 0 };
    if (b.openUntil > this.o.now()) {
      this.report({ ...job, outcome: 'circuit_open', attempts: 0 });
      return;
    }
    const problem = webhookUrlProblem(job.url);
    if (problem) {
      this.report({ ...job, outcome: 'refused', attempts: 0, error: problem });
      return;
    }
    let address: { address: string; family: number };
    try {
      address = await this.resolve(new URL(job.url).hostname);
    } catch (e) {
      this.report({ ...job, outcome: 'refused', attempts: 0, error: (e as Error).message });
      return;
    }
    let attempts = 0;
    let last = '';
    while (attempts < this.o.maxAttempts && !this.stopped) {
      attempts++;
      try {
        await this.post(job, address);
        this.breakers.delete(who);
        this.report({ ...job, outcome: 'delivered', attempts });
        return;
      } catch (e) {
        last = (e as Error).message;
        const status = e instanceof HttpStatusError ? e.status : 0;
        const retryable = status === 0 || status >= 500 || status === 408 || status === 429;
        if (!retryable) break;
        if (attempts < this.o.maxAttempts) {
          const base = this.o.backoffMs * 2 ** (attempts - 1);
          await sleep(base / 2 + Math.random() * base);
        }
      }
    }
    b.failures++;
    if (b.failures >= this.o.breakerThreshold) {
      b.openUntil = this.o.now() + this.o.breakerCooldownMs;
      b.failures = this.o.breakerThreshold - 1; // one trial after the cooldown
    }
    this.breakers.set(who, b);
    this.report({ ...job, outcome: 'failed', attempts, error: last });
  }

  /** Resolve once; refuse internal addresses unless allowed. */
  private async resolve(host: string): Promise<{ address: string; family: number }> {
    const bare = host.replace(/^\[|\]$/g, '');
    const all = isIP(bare)
      ? [{ address: bare, family: isIP(bare) }]
      : await lookup(bare, { all: true });
    if (!all.length) throw new Error(`${host} does not resolve`);
    if (!this.o.allowPrivate) {
      const bad = all.find((a) => isPrivateAddress(a.address));
      if (bad) {
        throw new Error(
          `${host} resolves to internal address ${bad.address}; set [mail] webhook_allow_private = true to allow it`,
        );
      }
    }
    return all[0]!;
  }

  private post(job: Job, address: { address: string; family: number }): Promise<void> {
    const body = JSON.stringify(
      job.alert ? { type: 'alert', alert: job.alert } : { type: 'mail', message: job.message },
    );
    const u = new URL(job.url);
    return new Promise((resolve, reject) => {
      const req = request(
        {
          method: 'POST',
          hostname: u.hostname.replace(/^\[|\]$/g, ''),
          port: u.port || 443,
          path: `${u.pathname}${u.search}`,
          servername: isIP(u.hostname) ? undefined : u.hostname,
          // Connect to the address that was checked, not a fresh lookup.
          lookup: (_h, opts, cb) => {
            if ((opts as { all?: boolean }).all) {
              (cb as (e: null, a: { address: string; family: number }[]) => void)(null, [address]);
            } else cb(null, address.address, address.family);
          },
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            'x-gc-message-id': job.message.id,
          },
          timeout: this.o.timeoutMs,
          ...(this.o.ca !== undefined ? { ca: this.o.ca } : {}),
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            const status = res.statusCode ?? 0;
            if (status >= 200 && status < 300) resolve();
            else reject(new HttpStatusError(status));
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`timed out after ${this.o.timeoutMs} ms`)));
      req.on('error', reject);
      req.end(body);
    });
  }
}
