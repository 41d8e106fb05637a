import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { selfSignedCert } from '../../test/helpers/tls.js';
import type { Message } from './mail.js';
import {
  WebhookDelivery,
  isPrivateAddress,
  redactUrl,
  webhookUrlProblem,
  type DeliveryResult,
} from './webhook.js';

const msg = (id: string, to = 'ext-1'): Message => ({
  id,
  from: 'mayor',
  to,
  subject: 's',
  body: 'b',
  created_at: new Date().toISOString(),
  read: false,
  archived: false,
  thread_id: id,
  reply_to: '',
  priority: 2,
  cc: [],
});

describe('webhook policy', () => {
  it('classifies internal addresses', () => {
    for (const ip of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '::1',
      '::',
      'fd00::1',
      'fe80::1',
      '::ffff:127.0.0.1',
      'not-an-ip',
    ]) {
      expect(isPrivateAddress(ip), ip).toBe(true);
    }
    for (const ip of ['8.8.8.8', '172.32.0.1', '1.1.1.1', '2606:4700::1111', '::ffff:8.8.8.8']) {
      expect(isPrivateAddress(ip), ip).toBe(false);
    }
  });

  it('accepts https only, without credentials; redacts queries', () => {
    expect(webhookUrlProblem('http://example.com/x')).toMatch(/https/);
    expect(webhookUrlProblem('https://u:p@example.com/x')).toMatch(/credentials/);
    expect(webhookUrlProblem('nope')).toBe('not a URL');
    expect(webhookUrlProblem('https://example.com/hook?token=1')).toBeUndefined();
    expect(redactUrl('https://example.com/hook?token=secret')).toBe('https://example.com/hook');
  });
});

describe('webhook delivery (real HTTPS on loopback)', () => {
  let cert: string;
  let server: Server;
  let url: string;
  let received: { id: string; body: unknown }[] = [];
  /** Status to answer with, per call (then 200). */
  let script: number[] = [];
  let delayMs = 0;
  let inFlight = 0;
  let maxInFlight = 0;

  beforeAll(async () => {
    const tls = selfSignedCert();
    cert = tls.cert;
    server = createServer({ key: tls.key, cert }, (req, res) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        setTimeout(() => {
          inFlight--;
          const status = script.shift() ?? 200;
          if (status === 200) {
            received.push({
              id: String(req.headers['x-gc-message-id']),
              body: JSON.parse(Buffer.concat(chunks).toString()) as unknown,
            });
          }
          res.writeHead(status).end();
        }, delayMs);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/hook?token=abc`;
  });

  afterAll(async () => {
    await new Promise((r) => server.close(r));
  });

  const reset = () => {
    received = [];
    script = [];
    delayMs = 0;
    maxInFlight = 0;
  };

  const delivery = (opts: ConstructorParameters<typeof WebhookDelivery>[0] = {}) => {
    const results: DeliveryResult[] = [];
    const d = new WebhookDelivery({
      ca: cert,
      allowPrivate: true,
      backoffMs: 10,
      onResult: (r) => results.push(r),
      ...opts,
    });
    return { d, results };
  };

  it('delivers the message as JSON', async () => {
    reset();
    const { d, results } = delivery();
    expect(d.enqueue(url, msg('m-1'))).toBe(true);
    await d.drained();
    expect(results.map((r) => r.outcome)).toEqual(['delivered']);
    expect(received.map((r) => r.id)).toEqual(['m-1']);
    expect(received[0]!.body).toMatchObject({
      type: 'mail',
      message: { id: 'm-1', from: 'mayor' },
    });
  });

  it('refuses loopback unless allowed, and plain http always', async () => {
    reset();
    const { d, results } = delivery({ allowPrivate: false });
    d.enqueue(url, msg('m-2'));
    d.enqueue(url.replace('https:', 'http:'), msg('m-3'));
    await d.drained();
    const by = Object.fromEntries(results.map((r) => [r.message.id, r]));
    expect(by['m-2']).toMatchObject({ outcome: 'refused' });
    expect(by['m-2']!.error).toMatch(/internal address 127\.0\.0\.1/);
    expect(by['m-3']).toMatchObject({ outcome: 'refused', error: 'must be an https:// URL' });
    expect(received).toEqual([]);
  });

  it('retries 5xx and 429 with backoff; a 400 is final', async () => {
    reset();
    script = [503, 429];
    const { d, results } = delivery();
    d.enqueue(url, msg('m-4'));
    await d.drained();
    expect(results[0]).toMatchObject({ outcome: 'delivered', attempts: 3 });
    script = [400];
    d.enqueue(url, msg('m-5'));
    await d.drained();
    expect(results[1]).toMatchObject({ outcome: 'failed', attempts: 1, error: 'HTTP 400' });
  });

  it('opens the circuit of a failing recipient and tries again after the cooldown', async () => {
    reset();
    let now = 1000;
    const { d, results } = delivery({
      maxAttempts: 1,
      breakerThreshold: 2,
      breakerCooldownMs: 5000,
      now: () => now,
    });
    script = [500, 500];
    d.enqueue(url, msg('a'));
    await d.drained();
    d.enqueue(url, msg('b'));
    await d.drained();
    d.enqueue(url, msg('c'));
    d.enqueue(url, msg('d', 'other-agent'));
    await d.drained();
    expect(results.map((r) => `${r.message.id}:${r.outcome}`)).toEqual([
      'a:failed',
      'b:failed',
      'c:circuit_open',
      'd:delivered',
    ]);
    now += 6000;
    d.enqueue(url, msg('e'));
    await d.drained();
    expect(results.at(-1)).toMatchObject({ outcome: 'delivered' });
  });

  it('bounds concurrency and the queue', async () => {
    reset();
    delayMs = 50;
    const { d, results } = delivery({ workers: 2, queueMax: 3 });
    const accepted = Array.from({ length: 8 }, (_, i) => d.enqueue(url, msg(`q${i}`)));
    // 2 start at once, 3 wait, the rest are refused.
    expect(accepted.filter(Boolean)).toHaveLength(5);
    await d.drained();
    expect(maxInFlight).toBeLessThanOrEqual(2);
    expect(results.filter((r) => r.outcome === 'queue_full')).toHaveLength(3);
    expect(received).toHaveLength(5);
  });
});
