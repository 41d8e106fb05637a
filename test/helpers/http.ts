/** A raw HTTP client for API tests: socket or TCP, any headers, raw bodies. */
import { request } from 'node:http';

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  body: { error?: { code: string; message: string; details?: Record<string, unknown> } } & Record<
    string,
    unknown
  >;
}

export interface CallOptions {
  token?: string | undefined;
  actor?: string;
  body?: unknown;
  raw?: string | Buffer;
  headers?: Record<string, string>;
}

export function apiCall(
  target: { socketPath: string } | { host: string; port: number },
  method: string,
  url: string,
  opts: CallOptions = {},
): Promise<Reply> {
  const payload = opts.raw ?? (opts.body === undefined ? undefined : JSON.stringify(opts.body));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        ...target,
        method,
        path: url,
        headers: {
          ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
          ...(opts.actor ? { 'x-gc-actor': opts.actor } : {}),
          ...(payload !== undefined ? { 'content-type': 'application/json' } : {}),
          ...opts.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let body: Reply['body'] = {};
          try {
            body = text ? (JSON.parse(text) as Reply['body']) : {};
          } catch {
            body = {};
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** Read an SSE stream until `until` says stop (or the server ends it); returns the frames. */
export function readSse(
  target: { socketPath: string } | { host: string; port: number },
  url: string,
  opts: {
    token: string;
    lastEventId?: string;
    until: (frames: SseFrame[]) => boolean;
    timeoutMs?: number;
  },
): Promise<SseFrame[]> {
  return new Promise((resolve, reject) => {
    const frames: SseFrame[] = [];
    const req = request(
      {
        ...target,
        method: 'GET',
        path: url,
        headers: {
          authorization: `Bearer ${opts.token}`,
          ...(opts.lastEventId ? { 'last-event-id': opts.lastEventId } : {}),
        },
      },
      (res) => {
        if (res.statusCode !== 200) {
          reject(new Error(`SSE ${url}: HTTP ${res.statusCode}`));
          res.resume();
          return;
        }
        let buf = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          buf += chunk;
          let i;
          while ((i = buf.indexOf('\n\n')) >= 0) {
            const raw = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const f: SseFrame = { id: '', event: '', data: undefined };
            for (const line of raw.split('\n')) {
              if (line.startsWith('id: ')) f.id = line.slice(4);
              else if (line.startsWith('event: ')) f.event = line.slice(7);
              else if (line.startsWith('data: ')) f.data = JSON.parse(line.slice(6)) as unknown;
            }
            if (!f.event && !f.id) continue;
            frames.push(f);
            if (opts.until(frames)) {
              clearTimeout(timer);
              req.destroy();
              resolve(frames);
              return;
            }
          }
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve(frames);
        });
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`SSE ${url}: timed out with ${frames.length} frames`));
    }, opts.timeoutMs ?? 15_000);
    req.on('error', (e) => {
      if (!req.destroyed) reject(e);
    });
    req.end();
  });
}

export interface SseFrame {
  id: string;
  event: string;
  data: unknown;
}

/** A free TCP port on loopback. */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}
