/**
 * A loopback Kubernetes API server for tests and benches: pods in
 * namespaces (list with label selectors and resourceVersions, watch as an
 * NDJSON stream replaying history after a resourceVersion, 410 Gone when
 * that is older than the history kept, create, get, delete with a grace
 * period, log) and exec over WebSocket with the v5/v4 channel framing
 * (stdin 0, stdout 1, stderr 2, status 3 carrying a Status, close 255).
 *
 * Each pod is a real local process group started from the pod's command,
 * with its own TMPDIR and TMUX_TMPDIR (so tmux in it has its own socket);
 * exec runs in that same environment. Deleting a pod kills every process
 * of the pod (found by a marker in their environment), as a container's
 * cgroup would. `processes: false` makes pods that only exist in the API
 * (for benches of 10,000 pods).
 */
// Pods here are free-form JSON as clients send it: typed loosely on purpose.
/* eslint-disable @typescript-eslint/no-unsafe-member-access, @typescript-eslint/no-unsafe-assignment, @typescript-eslint/no-unsafe-argument */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, rmSync, mkdtempSync } from 'node:fs';
import http from 'node:http';
import type { Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { WebSocketServer, type WebSocket } from 'ws';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface FakePod {
  obj: Obj;
  uid: string;
  dir: string;
  proc?: ChildProcess;
  log: Buffer[];
  killTimer?: NodeJS.Timeout;
}

interface Watcher {
  res: http.ServerResponse;
  ns: string;
  selector: Selector;
}

type Selector = (labels: Record<string, string>) => boolean;

export interface FakeK8sOptions {
  /** Run each pod's command as a local process (default true). */
  processes?: boolean;
  /** Watch events kept for replay; older resourceVersions get 410 Gone. */
  historyLimit?: number;
}

export type Verb = 'list' | 'watch' | 'create' | 'get' | 'delete' | 'log' | 'exec';

export class FakeKube {
  readonly calls = new Map<Verb, number>();
  private readonly pods = new Map<string, FakePod>();
  private history: { rv: number; type: string; ns: string; obj: Obj }[] = [];
  private rv = 100;
  private readonly watchers = new Set<Watcher>();
  private readonly sockets = new Set<Socket>();
  private readonly server: http.Server;
  private readonly wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (protocols) =>
      ['v5.channel.k8s.io', 'v4.channel.k8s.io'].find((p) => protocols.has(p)) ?? false,
  });
  private readonly root = mkdtempSync(path.join(os.tmpdir(), 'gc-fk8s-'));
  private port = 0;
  private closed = false;

  private constructor(private readonly o: FakeK8sOptions) {
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    this.server.on('upgrade', (req, socket, head) => this.upgrade(req, socket as Socket, head));
  }

  static async start(o: FakeK8sOptions = {}): Promise<FakeKube> {
    const k = new FakeKube(o);
    await k.listen();
    return k;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** A kubeconfig (YAML is JSON) naming this server, written under `dir`. */
  kubeconfig(): string {
    return JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'fake', cluster: { server: this.url, 'insecure-skip-tls-verify': true } }],
      users: [{ name: 'fake', user: { token: 'fake-token' } }],
      contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake', namespace: 'gc' } }],
      'current-context': 'fake',
    });
  }

  count(verb?: Verb): number {
    if (verb) return this.calls.get(verb) ?? 0;
    let n = 0;
    for (const v of this.calls.values()) n += v;
    return n;
  }

  /** The API server goes away (connections refused) until `up()`. */
  async down(): Promise<void> {
    this.endWatches();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  async up(): Promise<void> {
    await this.listen();
  }

  get openWatches(): number {
    return this.watchers.size;
  }

  /** Every open watch stream ends (as a server restart or a load balancer would). */
  endWatches(): void {
    for (const w of this.watchers) w.res.destroy();
    this.watchers.clear();
  }

  /** Forget the event history: a watch from any earlier version gets 410 Gone. */
  compact(): void {
    this.history = [];
  }

  podNames(ns = 'gc'): string[] {
    return [...this.pods.values()]
      .filter((p) => p.obj.metadata.namespace === ns)
      .map((p) => p.obj.metadata.name as string)
      .sort();
  }

  pod(name: string, ns = 'gc'): { metadata?: { uid?: string } } | undefined {
    return this.pods.get(`${ns}/${name}`)?.obj;
  }

  /** Create a pod as another client would (a second pod of a session, a Go-created pod). */
  addPod(pod: Obj, ns = 'gc'): Obj {
    return this.createPod(ns, pod);
  }

  /** Add `n` pods that only exist in the API (no process), quickly. */
  addVirtualPods(n: number, make: (i: number) => Obj, ns = 'gc'): void {
    for (let i = 0; i < n; i++) {
      const p = this.createPod(ns, make(i), true);
      this.setRunning(this.pods.get(`${ns}/${p.metadata.name}`)!);
    }
  }

  /** Delete as `kubectl delete pod` behind the city's back. */
  deletePod(name: string, ns = 'gc', graceSeconds = 0): boolean {
    return this.removePod(ns, name, graceSeconds);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.pods.values()) this.killPod(p, 'SIGKILL');
    this.endWatches();
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
    rmSync(this.root, { recursive: true, force: true });
  }

  // -- HTTP ----------------------------------------------------------------

  private async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.port = (this.server.address() as { port: number }).port;
  }

  private bump(verb: Verb): void {
    this.calls.set(verb, (this.calls.get(verb) ?? 0) + 1);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods(?:\/([^/]+))?(?:\/(log|exec))?$/.exec(
      url.pathname,
    );
    if (!m) return this.status(res, 404, 'NotFound', `no route ${url.pathname}`);
    const [, ns, name, sub] = m as unknown as [
      string,
      string,
      string | undefined,
      string | undefined,
    ];
    const q = url.searchParams;
    if (!name && req.method === 'GET') {
      const selector = parseSelector(q.get('labelSelector') ?? '');
      if (q.get('watch') === 'true' || q.get('watch') === '1') {
        this.bump('watch');
        return this.watch(res, ns, selector, q.get('resourceVersion') ?? '');
      }
      this.bump('list');
      const items = [...this.pods.values()]
        .filter((p) => p.obj.metadata.namespace === ns && selector(p.obj.metadata.labels ?? {}))
        .map((p) => p.obj);
      return this.json(res, 200, {
        kind: 'PodList',
        apiVersion: 'v1',
        metadata: { resourceVersion: String(this.rv) },
        items,
      });
    }
    if (!name && req.method === 'POST') {
      this.bump('create');
      return readBody(req, (body) => {
        try {
          const pod = JSON.parse(body) as Obj;
          const n = pod.metadata?.name as string | undefined;
          if (!n || !/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(n)) {
            return this.status(res, 422, 'Invalid', `invalid pod name ${JSON.stringify(n)}`);
          }
          if (this.pods.has(`${ns}/${n}`)) {
            return this.status(res, 409, 'AlreadyExists', `pods "${n}" already exists`);
          }
          this.json(res, 201, this.createPod(ns, pod));
        } catch (e) {
          this.status(res, 400, 'BadRequest', String(e));
        }
      });
    }
    const p = name ? this.pods.get(`${ns}/${name}`) : undefined;
    if (sub === 'log' && req.method === 'GET') {
      this.bump('log');
      if (!p) return this.status(res, 404, 'NotFound', `pods "${name}" not found`);
      let text = Buffer.concat(p.log).toString('utf8');
      const tail = Number(q.get('tailLines'));
      if (tail > 0) text = text.replace(/\n$/, '').split('\n').slice(-tail).join('\n') + '\n';
      res.writeHead(200, { 'content-type': 'text/plain' });
      return void res.end(text);
    }
    if (name && !sub && req.method === 'GET') {
      this.bump('get');
      if (!p) return this.status(res, 404, 'NotFound', `pods "${name}" not found`);
      return this.json(res, 200, p.obj);
    }
    if (name && !sub && req.method === 'DELETE') {
      this.bump('delete');
      return readBody(req, (body) => {
        if (!p) return this.status(res, 404, 'NotFound', `pods "${name}" not found`);
        let grace = Number(q.get('gracePeriodSeconds'));
        try {
          const b = body ? (JSON.parse(body) as Obj) : {};
          if (typeof b.gracePeriodSeconds === 'number') grace = b.gracePeriodSeconds;
        } catch {
          // no body options
        }
        if (!Number.isFinite(grace)) grace = p.obj.spec?.terminationGracePeriodSeconds ?? 30;
        this.removePod(ns, name, grace);
        this.json(res, 200, p.obj);
      });
    }
    this.status(res, 405, 'MethodNotAllowed', `${req.method} ${url.pathname}`);
  }

  private json(res: http.ServerResponse, code: number, body: unknown): void {
    res.writeHead(code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  }

  private status(res: http.ServerResponse, code: number, reason: string, message: string): void {
    this.json(res, code, {
      kind: 'Status',
      apiVersion: 'v1',
      status: 'Failure',
      message,
      reason,
      code,
    });
  }

  private watch(res: http.ServerResponse, ns: string, selector: Selector, from: string): void {
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    const send = (type: string, obj: Obj) =>
      res.write(`${JSON.stringify({ type, object: obj })}\n`);
    const since = Number(from || '0');
    if (!from || from === '0') {
      for (const p of this.pods.values()) {
        if (p.obj.metadata.namespace === ns && selector(p.obj.metadata.labels ?? {}))
          send('ADDED', p.obj);
      }
    } else {
      const oldest = this.history[0]?.rv ?? this.rv + 1;
      if (since < oldest - 1 && since < this.rv) {
        send('ERROR', {
          kind: 'Status',
          apiVersion: 'v1',
          status: 'Failure',
          message: `too old resource version: ${since} (${oldest - 1})`,
          reason: 'Expired',
          code: 410,
        });
        return void res.end();
      }
      for (const h of this.history) {
        if (h.rv > since && h.ns === ns && selector(h.obj.metadata.labels ?? {}))
          send(h.type, h.obj);
      }
    }
    const w: Watcher = { res, ns, selector };
    this.watchers.add(w);
    res.on('close', () => this.watchers.delete(w));
  }

  private emit(type: string, ns: string, obj: Obj): void {
    this.rv++;
    obj.metadata.resourceVersion = String(this.rv);
    const snap = structuredClone(obj);
    this.history.push({ rv: this.rv, type, ns, obj: snap });
    const limit = this.o.historyLimit ?? 20_000;
    if (this.history.length > limit) this.history.splice(0, this.history.length - limit);
    const line = `${JSON.stringify({ type, object: snap })}\n`;
    for (const w of this.watchers) {
      if (w.ns === ns && w.selector(snap.metadata.labels ?? {})) w.res.write(line);
    }
  }

  // -- pods ----------------------------------------------------------------

  private createPod(ns: string, pod: Obj, virtual = false): Obj {
    const uid = randomUUID();
    const obj: Obj = structuredClone(pod);
    obj.apiVersion = 'v1';
    obj.kind = 'Pod';
    obj.metadata = {
      ...obj.metadata,
      namespace: ns,
      uid,
      creationTimestamp: new Date().toISOString(),
    };
    obj.status = { phase: 'Pending' };
    const dir = path.join(this.root, uid.slice(0, 8));
    const p: FakePod = { obj, uid, dir, log: [] };
    this.pods.set(`${ns}/${obj.metadata.name}`, p);
    this.emit('ADDED', ns, obj);
    if (!virtual) {
      if (this.o.processes === false) setImmediate(() => this.setRunning(p));
      else setTimeout(() => this.run(p), 20);
    }
    return obj;
  }

  private env(p: FakePod): NodeJS.ProcessEnv {
    const c = p.obj.spec?.containers?.[0] ?? {};
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      LANG: 'C.UTF-8',
    };
    for (const e of c.env ?? []) env[e.name] = e.value ?? '';
    env.TMPDIR = path.join(p.dir, 'tmp');
    env.TMUX_TMPDIR = path.join(p.dir, 'tmux');
    env.GC_FAKE_POD = p.uid;
    return env;
  }

  private cwd(p: FakePod): string {
    const wd = p.obj.spec?.containers?.[0]?.workingDir as string | undefined;
    const dir = wd ?? path.join(p.dir, 'work');
    mkdirSync(dir, { recursive: true });
    return dir;
  }

  private run(p: FakePod): void {
    if (this.closed || !this.pods.has(`${p.obj.metadata.namespace}/${p.obj.metadata.name}`)) return;
    if (p.obj.metadata.deletionTimestamp) return;
    mkdirSync(path.join(p.dir, 'tmp'), { recursive: true });
    mkdirSync(path.join(p.dir, 'tmux'), { recursive: true, mode: 0o700 });
    const c = p.obj.spec?.containers?.[0] ?? {};
    const argv = [...(c.command ?? []), ...(c.args ?? [])] as string[];
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: this.cwd(p),
      env: this.env(p),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    p.proc = child;
    child.stdout.on('data', (d: Buffer) => p.log.push(d));
    child.stderr.on('data', (d: Buffer) => p.log.push(d));
    child.on('error', (e) => {
      p.log.push(Buffer.from(`${e.message}\n`));
    });
    child.once('spawn', () => this.setRunning(p));
    child.on('close', (code, signal) => this.ended(p, code ?? (signal ? 137 : 1)));
  }

  private setRunning(p: FakePod): void {
    if (p.obj.metadata.deletionTimestamp || p.obj.status.phase !== 'Pending') return;
    p.obj.status = {
      phase: 'Running',
      startTime: new Date().toISOString(),
      containerStatuses: [
        {
          name: 'agent',
          ready: true,
          restartCount: 0,
          image: p.obj.spec?.containers?.[0]?.image ?? '',
          imageID: '',
          state: { running: { startedAt: new Date().toISOString() } },
        },
      ],
    };
    this.emit('MODIFIED', p.obj.metadata.namespace, p.obj);
  }

  private ended(p: FakePod, code: number): void {
    // The container's main process ended: the rest of the pod goes with it.
    this.killPod(p, 'SIGKILL');
    clearTimeout(p.killTimer);
    const key = `${p.obj.metadata.namespace}/${p.obj.metadata.name}`;
    if (this.pods.get(key) !== p) return;
    if (p.obj.metadata.deletionTimestamp) {
      this.pods.delete(key);
      this.emit('DELETED', p.obj.metadata.namespace, p.obj);
      rmSync(p.dir, { recursive: true, force: true });
      return;
    }
    const started = p.obj.status.containerStatuses?.[0]?.state?.running?.startedAt;
    p.obj.status = {
      phase: code === 0 ? 'Succeeded' : 'Failed',
      containerStatuses: [
        {
          name: 'agent',
          ready: false,
          restartCount: 0,
          image: p.obj.spec?.containers?.[0]?.image ?? '',
          imageID: '',
          state: {
            terminated: {
              exitCode: code,
              reason: code === 0 ? 'Completed' : 'Error',
              startedAt: started,
              finishedAt: new Date().toISOString(),
            },
          },
        },
      ],
    };
    this.emit('MODIFIED', p.obj.metadata.namespace, p.obj);
  }

  private removePod(ns: string, name: string, graceSeconds: number): boolean {
    const key = `${ns}/${name}`;
    const p = this.pods.get(key);
    if (!p) return false;
    const live = p.proc && p.proc.exitCode === null && p.proc.signalCode === null;
    if (!live || graceSeconds <= 0) {
      this.killPod(p, 'SIGKILL');
      p.obj.metadata.deletionTimestamp ??= new Date().toISOString();
      if (!live) {
        this.pods.delete(key);
        this.emit('DELETED', ns, p.obj);
        rmSync(p.dir, { recursive: true, force: true });
      }
      return true;
    }
    if (p.obj.metadata.deletionTimestamp) return true;
    p.obj.metadata.deletionTimestamp = new Date().toISOString();
    p.obj.metadata.deletionGracePeriodSeconds = graceSeconds;
    this.emit('MODIFIED', ns, p.obj);
    this.killPod(p, 'SIGTERM');
    p.killTimer = setTimeout(() => this.killPod(p, 'SIGKILL'), graceSeconds * 1000);
    return true;
  }

  /** Signal every process of the pod: its group and all that carry its marker. */
  private killPod(p: FakePod, signal: NodeJS.Signals): void {
    const pids = new Set<number>();
    if (p.proc?.pid) pids.add(-p.proc.pid);
    const marker = `GC_FAKE_POD=${p.uid}`;
    for (const d of readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      try {
        if (readFileSync(`/proc/${d}/environ`, 'latin1').split('\0').includes(marker)) {
          pids.add(Number(d));
        }
      } catch {
        // gone, or not ours
      }
    }
    for (const pid of pids) {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
  }

  // -- exec ----------------------------------------------------------------

  private upgrade(req: http.IncomingMessage, socket: Socket, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/exec$/.exec(url.pathname);
    this.bump('exec');
    const p = m ? this.pods.get(`${m[1]}/${m[2]}`) : undefined;
    if (!p || p.obj.status.phase !== 'Running' || p.obj.metadata.deletionTimestamp) {
      socket.end(
        'HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\n\r\ncontainer not running',
      );
      return;
    }
    const argv = url.searchParams.getAll('command');
    const wantStdin = url.searchParams.get('stdin') === 'true';
    this.wss.handleUpgrade(req, socket, head, (ws) => this.exec(ws, p, argv, wantStdin));
  }

  private exec(ws: WebSocket, p: FakePod, argv: string[], wantStdin: boolean): void {
    const frame = (ch: number, data: Buffer | string) =>
      ws.send(Buffer.concat([Buffer.from([ch]), Buffer.from(data)]));
    const finish = (status: Obj) => {
      frame(3, JSON.stringify(status));
      ws.close();
    };
    if (!argv.length)
      return finish({ status: 'Failure', reason: 'BadRequest', message: 'no command' });
    mkdirSync(path.join(p.dir, 'tmp'), { recursive: true });
    mkdirSync(path.join(p.dir, 'tmux'), { recursive: true, mode: 0o700 });
    const child = spawn(argv[0]!, argv.slice(1), {
      cwd: this.cwd(p),
      env: this.env(p),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    child.stdin.on('error', () => undefined);
    if (!wantStdin) child.stdin.end();
    child.stdout.on('data', (d: Buffer) => frame(1, d));
    child.stderr.on('data', (d: Buffer) => frame(2, d));
    let failed: Error | undefined;
    child.on('error', (e) => (failed = e));
    child.on('close', (code, signal) => {
      if (failed && code === null) {
        return finish({
          status: 'Failure',
          reason: 'InternalError',
          message: `exec failed: ${failed.message}`,
        });
      }
      const c = code ?? (signal ? 128 + (os.constants.signals[signal] ?? 9) : 1);
      finish(
        c === 0
          ? { metadata: {}, status: 'Success' }
          : {
              metadata: {},
              status: 'Failure',
              message: `command terminated with non-zero exit code: ${c}`,
              reason: 'NonZeroExitCode',
              details: { causes: [{ reason: 'ExitCode', message: String(c) }] },
            },
      );
    });
    ws.on('message', (data: Buffer) => {
      const ch = data[0];
      if (ch === 0) child.stdin.write(data.subarray(1));
      else if (ch === 255 && data[1] === 0) child.stdin.end();
    });
    ws.on('close', () => {
      if (child.exitCode === null) child.stdin.end();
    });
  }
}

function readBody(req: http.IncomingMessage, done: (body: string) => void): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => done(Buffer.concat(chunks).toString('utf8')));
}

/** Equality-based selectors: `a=b`, `a==b`, `a!=b`, `a`, `!a`, comma-joined. */
export function parseSelector(text: string): Selector {
  const parts = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((term): Selector => {
      let m = /^([^!=]+)!=(.*)$/.exec(term);
      if (m) return (l) => l[m![1]!.trim()] !== m![2]!.trim();
      m = /^([^!=]+)==?(.*)$/.exec(term);
      if (m) return (l) => l[m[1]!.trim()] === m[2]!.trim();
      if (term.startsWith('!')) return (l) => !(term.slice(1) in l);
      return (l) => term in l;
    });
  return (labels) => parts.every((f) => f(labels));
}
