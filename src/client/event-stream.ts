/**
 * Following the event log through a server (SSE on /v0/events/stream), and
 * across its restarts: with `reconnect`, a lost stream waits for the server
 * and resumes after the last seq seen.
 */
import { request, type RequestOptions } from 'node:http';
import { GcError, errorMessage } from '../core/index.js';
import { eventMatcher, type GcEvent } from '../events/index.js';
import type { FollowOptions } from './city-client.js';
import { errorFromData } from './errors.js';

/** The server's typed error from a body that may not be JSON. */
function errorFromBody(status: number, text: string): GcError {
  try {
    return errorFromData(status, JSON.parse(text));
  } catch {
    return new GcError('internal', `HTTP ${status}: ${text.slice(0, 200)}`);
  }
}
/** Resolve after `ms`, or at once when `signal` aborts. */
function abortableSleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done);
  });
}

/**
 * Live events after `afterSeq`. When the stream is lost (the server
 * stopped or restarted), with `reconnect` it waits for the server and
 * resumes after the last seq it saw, so nothing is lost or repeated;
 * without, it ends with an `unavailable` error saying where it stopped.
 */
export async function* followEvents(
  requestOptions: (path: string) => RequestOptions,
  afterSeq: number,
  options: FollowOptions = {},
): AsyncIterable<GcEvent> {
  const matches = options.filter ? eventMatcher(options.filter) : () => true;
  const cursor = { after: afterSeq };
  let lostSince: string | undefined;
  let delay = 100;
  while (!options.signal?.aborted) {
    const stream = streamOnce(requestOptions, cursor, options.signal, () => {
      if (lostSince !== undefined) {
        options.onStatus?.(`reconnected; resuming after seq ${cursor.after}`);
        lostSince = undefined;
      }
      delay = 100;
    });
    let ended = '';
    for (;;) {
      const next = await stream.next();
      if (next.done) {
        ended = next.value;
        break;
      }
      if (matches(next.value)) yield next.value;
    }
    if (options.signal?.aborted) return;
    if (!options.reconnect) {
      throw new GcError(
        'unavailable',
        `the event stream ended after seq ${cursor.after}: ${ended}`,
        { fix: `follow again with --after ${cursor.after} once the server is back` },
      );
    }
    if (lostSince === undefined) {
      lostSince = ended;
      options.onStatus?.(
        `event stream lost after seq ${cursor.after} (${ended}); waiting for the server`,
      );
    }
    await abortableSleep(delay, options.signal);
    delay = Math.min(delay * 2, 2000);
  }
}

/**
 * One connection to the event stream: yields every event (advancing
 * `cursor.after`), calls `connected` once the server answers, and returns
 * why it ended. A refusal by the server (4xx) is thrown, not retried.
 */
async function* streamOnce(
  requestOptions: (path: string) => RequestOptions,
  cursor: { after: number },
  signal: AbortSignal | undefined,
  connected: () => void,
): AsyncGenerator<GcEvent, string> {
  const queue: GcEvent[] = [];
  let wake: (() => void) | undefined;
  let ended: string | undefined;
  let refused: Error | undefined;
  const finish = (why: string) => {
    ended ??= why;
    wake?.();
  };
  const req = request(requestOptions(`/v0/events/stream?after_seq=${cursor.after}`), (res) => {
    if (res.statusCode !== 200) {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        if (status >= 400 && status < 500) refused = errorFromBody(status, text);
        finish(`the server answered ${status}`);
      });
      res.on('error', (e) => finish(e.message));
      return;
    }
    connected();
    let buf = '';
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buf += chunk;
      let i;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = frame.split('\n').find((l) => l.startsWith('data: '));
        if (!data) continue;
        queue.push(JSON.parse(data.slice(6)) as GcEvent);
      }
      wake?.();
    });
    res.on('end', () => finish('the server closed the stream'));
    // A connection cut without an end (the server stopped) ends it too:
    // without this the follower would wait forever on nothing.
    res.on('close', () => finish('the connection closed'));
    // Node reports a response cut short as an error named "aborted".
    res.on('error', (e) => finish(e.message === 'aborted' ? 'the connection was cut' : e.message));
  });
  req.on('error', (e) => finish(errorMessage(e)));
  req.end();
  const onAbort = () => finish('aborted');
  signal?.addEventListener('abort', onAbort);
  try {
    for (;;) {
      while (queue.length) {
        const e = queue.shift()!;
        cursor.after = Math.max(cursor.after, e.seq);
        yield e;
      }
      if (ended !== undefined) break;
      await new Promise<void>((r) => (wake = r));
      wake = undefined;
    }
    if (refused) throw refused;
    return ended;
  } finally {
    signal?.removeEventListener('abort', onAbort);
    req.destroy();
  }
}
