/**
 * The k8s session provider: one pod per session, tmux session `main`
 * inside it. What the controller asks every tick (snapshot, is-running,
 * list) is answered from the informer's cache, kept current by one watch:
 * no API call per steady tick. Talking to a session (nudge, peek, keys,
 * meta, activity, copy) is an exec of tmux in its pod. A cache that lost
 * the API server is stale: snapshot then fails rather than show old truth,
 * so the controller neither starts nor stops on it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import {
  GcError,
  NotFoundError,
  ValidationError,
  errorMessage,
  mapLimit,
  randomBase36,
  startProcess,
} from '../../core/index.js';
import {
  ProviderUnavailableError,
  SessionDiedDuringStartupError,
  SessionExistsError,
} from '../errors.js';
import type {
  Provider,
  ProviderCapabilities,
  SessionSnapshot,
  StartOptions,
  StartRequest,
  StartedEach,
} from '../provider.js';
import type { StartConfig } from '../start-config.js';
import { installAgentHooks } from '../agent-hooks.js';
import { awaitReady, repeatedNames } from '../startup.js';
import {
  resolveInside,
  validateKeys,
  validateMetaKey,
  validateNudgeText,
  validatePrefix,
  validateSessionName,
} from '../validate.js';
import { httpStatus, type PodApi } from './api.js';
import { PodCache } from './pod-cache.js';
import * as sh from './pod-scripts.js';
import {
  CONTAINER,
  buildPod,
  sanitizeName,
  sessionOfPod,
  viewPod,
  type PodSettings,
} from './pod-spec.js';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';

export interface K8sProviderOptions {
  api: PodApi;
  namespace: string;
  /** Agent image; start fails with a clear error without one. */
  image?: string;
  cpuRequest?: string;
  memRequest?: string;
  cpuLimit?: string;
  memLimit?: string;
  serviceAccount?: string;
  nodeSelector?: Record<string, string>;
  labels?: Record<string, string>;
  /** GC_API as pods reach it; replaces the controller's own address in their env. */
  apiUrl?: string;
  stopGraceMs?: number;
  startTimeoutMs?: number;
  /** How old a session's activity time may get before a background exec renews it; 0: never. */
  activityRefreshMs?: number;
  /** `kubectl` arguments that name the cluster, for attach. */
  kubectlArgs?: readonly string[];
  backoffMs?: number;
}

const START_CONCURRENCY = 32;
const OP_CONCURRENCY = 16;

export class K8sProvider extends PodCache implements Provider {
  readonly name = 'k8s';
  readonly capabilities: ProviderCapabilities = {
    reportsActivity: true,
    reportsAttachment: false,
    canAttach: true,
    runsProcesses: true,
  };
  private readonly settings: PodSettings;
  private readonly starting = new Set<string>();
  private refresher: NodeJS.Timeout | undefined;

  constructor(private readonly o: K8sProviderOptions) {
    super(o.api, o.namespace, o.backoffMs);
    this.settings = {
      namespace: o.namespace,
      image: o.image ?? '',
      cpuRequest: o.cpuRequest ?? '500m',
      memRequest: o.memRequest ?? '1Gi',
      cpuLimit: o.cpuLimit ?? '2',
      memLimit: o.memLimit ?? '4Gi',
      ...(o.serviceAccount ? { serviceAccount: o.serviceAccount } : {}),
      ...(o.nodeSelector ? { nodeSelector: o.nodeSelector } : {}),
      ...(o.labels ? { labels: o.labels } : {}),
      graceSeconds: Math.max(0, Math.ceil((o.stopGraceMs ?? 5000) / 1000)),
    };
    const every = o.activityRefreshMs ?? 60_000;
    if (every > 0) {
      this.refresher = setInterval(() => this.refreshActivity(every), Math.max(1000, every / 4));
      this.refresher.unref();
    }
  }

  // -- start and stop ---------------------------------------------------

  async start(name: string, config: StartConfig, options: StartOptions = {}): Promise<void> {
    await this.startOne({ name, config, options });
  }

  async startMany(
    requests: readonly StartRequest[],
    onEach?: StartedEach,
  ): Promise<(Error | undefined)[]> {
    const repeated = repeatedNames(requests);
    const out: (Error | undefined)[] = requests.map(() => undefined);
    await mapLimit(requests, START_CONCURRENCY, async (r, i) => {
      let err: Error | undefined;
      try {
        if (repeated.has(i)) throw new SessionExistsError(r.name);
        await this.startOne(r);
      } catch (e) {
        err = e instanceof Error ? e : new Error(String(e));
      }
      out[i] = err;
      onEach?.(i, err);
    });
    return out;
  }

  private async startOne(r: StartRequest): Promise<void> {
    const { name, config } = r;
    validateSessionName(name);
    for (const k of Object.keys(r.meta ?? {})) validateMetaKey(k);
    const deadline = r.options?.deadline ?? Date.now() + (this.o.startTimeoutMs ?? 60_000);
    if (!this.settings.image) {
      throw new ValidationError('no agent image is set', {
        where: 'session.k8s.image',
        fix: 'set [session.k8s] image (or GC_K8S_IMAGE); gc build-image makes one',
      });
    }
    await this.synced();
    this.requireFresh();
    if (this.starting.has(name)) throw new SessionExistsError(name);
    this.starting.add(name);
    try {
      const pods = this.podsOf(name);
      if (pods.some((p) => viewPod(p).alive)) throw new SessionExistsError(name);
      // Ended pods of this session go first (a dead session is replaced).
      await this.deletePods(
        pods.map((p) => p.metadata!.name!),
        deadline,
      );
      const pod = buildPod(name, this.settings, config.work_dir, config.env?.GC_AGENT);
      const podName = pod.metadata!.name!;
      await this.create(pod, deadline);
      try {
        await this.launch(name, podName, config, r.meta ?? {}, deadline);
      } catch (e) {
        await this.deletePods([podName], Date.now() + 30_000).catch(() => undefined);
        throw e;
      }
    } finally {
      this.starting.delete(name);
    }
  }

  private async create(pod: V1Pod, deadline: number): Promise<void> {
    const podName = pod.metadata!.name!;
    for (let attempt = 0; ; attempt++) {
      try {
        this.informer.observe(await this.api.create(pod));
        return;
      } catch (e) {
        // A pod of that name is still going away: wait for it, once.
        if (httpStatus(e) === 409 && attempt === 0) {
          const old = this.informer.pods.get(podName) ?? (await this.api.get(podName));
          if (old && viewPod(old).alive && !viewPod(old).deleting) {
            throw new SessionExistsError(sessionOfPod(old) ?? podName);
          }
          await this.deletePods([podName], deadline);
          continue;
        }
        throw new GcError('unavailable', `creating pod ${podName}: ${errorMessage(e)}`, {
          cause: e,
        });
      }
    }
  }

  /** After create: wait for Running, copy files in, run the start exec, wait for ready. */
  private async launch(
    name: string,
    podName: string,
    config: StartConfig,
    meta: Readonly<Record<string, string>>,
    deadline: number,
  ): Promise<void> {
    const current = () => this.informer.pods.get(podName);
    await this.informer.until(() => {
      const p = current();
      return !p || viewPod(p).running || viewPod(p).ended || viewPod(p).deleting;
    }, deadline);
    const pod = current();
    const view = pod && viewPod(pod);
    if (!view || view.ended || view.deleting) {
      const log = await this.api.log(podName, CONTAINER, 20).catch(() => '');
      throw new SessionDiedDuringStartupError(name, log, view?.exitCode);
    }
    if (!view.running) {
      throw new GcError(
        'unavailable',
        `pod ${podName} of session ${name} was not running by the start deadline${view.why ? ` (${view.why})` : ''}`,
        {
          details: { session: name, pod: podName },
          fix: `kubectl -n ${this.o.namespace} describe pod ${podName}`,
        },
      );
    }
    await this.copyIn(podName, config);
    const env = { ...config.env, ...(this.o.apiUrl ? { GC_API: this.o.apiUrl } : {}) };
    const setup = [...(config.session_setup ?? [])];
    if (config.session_setup_script)
      setup.push(await readFile(config.session_setup_script, 'utf8'));
    const r = await this.exec(
      podName,
      ['/bin/sh', '-c', sh.START_SCRIPT],
      sh.startInput(config, env, setup.join('\n')),
    );
    if (r.error) throw new ProviderUnavailableError('k8s', `exec in pod ${podName}: ${r.error}`);
    if (r.code === 127) {
      const program = sh.programOf(config.command) ?? config.command ?? '';
      throw new ValidationError(`${program}: command not found in the agent image`, {
        where: 'command',
        fix: 'install it in the image (gc build-image), or fix the agent start_command',
        details: { command: program, pod: podName },
      });
    }
    if (r.code !== 0) {
      const what = r.code === 96 ? 'pre_start failed' : `the start exec exited ${r.code}`;
      throw new GcError(
        'invalid',
        `starting session ${name} in pod ${podName}: ${what}: ${r.stderr.trim()}`,
      );
    }
    this.activity.set(name, Number(r.stdout.toString().trim()) * 1000 || Date.now());
    this.probed.set(name, Date.now());
    for (const [k, v] of Object.entries(meta)) await this.setMeta(name, k, v);
    await awaitReady(this, name, config, deadline);
  }

  private async copyIn(podName: string, config: StartConfig): Promise<void> {
    const workDir = config.work_dir ?? '.';
    const copies: { src: string; dst: string }[] = [];
    if (config.overlay_dir && existsSync(config.overlay_dir)) {
      copies.push({ src: config.overlay_dir, dst: workDir });
    }
    for (const c of config.copy_files ?? []) {
      copies.push({ src: c.src, dst: resolveInside(workDir, c.rel_dst) });
    }
    let hooks: string | undefined;
    if (config.agent_hooks?.length) {
      // Made here, copied in like an overlay (an existing file in the pod is replaced).
      hooks = await mkdtemp(path.join(os.tmpdir(), 'gc-hooks-'));
      await installAgentHooks(hooks, config.agent_hooks);
      copies.push({ src: hooks, dst: workDir });
    }
    try {
      for (const c of copies) await this.copyPath(podName, c.src, c.dst, c.dst === workDir);
    } finally {
      if (hooks) await rm(hooks, { recursive: true, force: true });
    }
  }

  /** Copy `src` to `dst` in the pod; `into`: the contents of directory `src` into `dst`. */
  private async copyPath(podName: string, src: string, dst: string, into: boolean): Promise<void> {
    if (!existsSync(src)) return;
    const tar = into ? await sh.tarOf(src, '.') : await sh.tarOf(src, path.posix.basename(dst));
    const r = await this.exec(podName, sh.untarArgv(into ? dst : path.posix.dirname(dst)), tar);
    if (r.code !== 0) {
      throw new GcError(
        'unavailable',
        `copying ${src} into pod ${podName}: ${r.error ?? r.stderr.trim()}`,
      );
    }
  }

  /** Delete these pods and wait (through events) until they are gone or `deadline`. */
  private async deletePods(names: readonly string[], deadline: number): Promise<void> {
    if (!names.length) return;
    await Promise.all(names.map((n) => this.api.delete(n, this.settings.graceSeconds)));
    if (this.informer.staleReason !== undefined) return;
    await this.informer.until(() => names.every((n) => !this.informer.pods.has(n)), deadline);
  }

  async stop(name: string): Promise<void> {
    validateSessionName(name);
    await this.synced();
    const pods = new Set([...(this.bySession.get(name) ?? []), sanitizeName(name)]);
    const wait = Date.now() + (this.settings.graceSeconds + 30) * 1000;
    await this.deletePods([...pods], wait);
    this.activity.delete(name);
  }

  async stopMany(names: readonly string[]): Promise<void> {
    for (const n of names) validateSessionName(n);
    await mapLimit(names, OP_CONCURRENCY, (n) => this.stop(n));
  }

  // -- what the tick asks: from the cache ------------------------------

  async isRunning(name: string): Promise<boolean> {
    validateSessionName(name);
    await this.synced();
    const pod = this.podOf(name);
    return Boolean(pod && viewPod(pod).alive);
  }

  async listRunning(prefix: string): Promise<string[]> {
    if (prefix) validatePrefix(prefix);
    await this.synced();
    return this.snapshotFromCache(prefix)
      .filter((s) => s.alive)
      .map((s) => s.name);
  }

  async snapshot(prefix: string): Promise<SessionSnapshot[]> {
    if (prefix) validatePrefix(prefix);
    await this.synced();
    this.requireFresh();
    return this.snapshotFromCache(prefix);
  }

  private snapshotFromCache(prefix: string): SessionSnapshot[] {
    const out: SessionSnapshot[] = [];
    for (const name of this.bySession.keys()) {
      if (!name.startsWith(prefix)) continue;
      const pod = this.podOf(name);
      if (!pod) continue;
      const v = viewPod(pod);
      if (v.deleting) continue;
      out.push({
        name,
        alive: v.alive,
        lastActivity: this.activity.get(name) ?? v.startedAt,
        attached: false,
        ...(v.exitCode === undefined ? {} : { exitCode: v.exitCode }),
      });
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  // -- talking to a session: exec of tmux in its pod --------------------

  isAttached(name: string): Promise<boolean> {
    validateSessionName(name);
    return Promise.resolve(false);
  }

  async attach(name: string): Promise<void> {
    validateSessionName(name);
    await this.synced();
    const pod = this.runningPod(name);
    if (!pod) throw new NotFoundError('session', name);
    const p = startProcess(
      'kubectl',
      [
        ...(this.o.kubectlArgs ?? []),
        '-n',
        this.o.namespace,
        'exec',
        '-it',
        pod,
        '-c',
        CONTAINER,
        '--',
        'tmux',
        'attach',
        '-t',
        'main',
      ],
      { stdio: 'inherit' },
    );
    const exit = await p.exited;
    if (exit.error) {
      throw new ProviderUnavailableError('k8s', `kubectl exec: ${exit.error.message}`, {
        fix: 'install kubectl; attach runs kubectl exec -it ... tmux attach -t main',
      });
    }
  }

  async processAlive(name: string, names: readonly string[]): Promise<boolean> {
    validateSessionName(name);
    if (names.length === 0) return true;
    await this.synced();
    const pod = this.runningPod(name);
    if (!pod) return false;
    return (await this.exec(pod, sh.processArgv(names))).code === 0;
  }

  async nudge(name: string, text: string): Promise<void> {
    validateSessionName(name);
    validateNudgeText(text);
    await this.synced();
    const pod = this.runningPod(name);
    if (!pod) return;
    const { argv, stdin } = sh.nudgeArgv(text, `gc-nudge-${randomBase36(8)}`);
    await this.mustExec(name, pod, argv, stdin, 'nudge');
  }

  async nudgeMany(names: readonly string[], text: string): Promise<void> {
    validateNudgeText(text);
    for (const n of names) validateSessionName(n);
    await mapLimit(names, OP_CONCURRENCY, (n) => this.nudge(n, text));
  }

  async interrupt(name: string): Promise<void> {
    await this.sendKeys(name, ['C-c']);
  }

  async interruptMany(names: readonly string[]): Promise<void> {
    for (const n of names) validateSessionName(n);
    await mapLimit(names, OP_CONCURRENCY, (n) => this.interrupt(n));
  }

  async sendKeys(name: string, keys: readonly string[]): Promise<void> {
    validateSessionName(name);
    validateKeys(keys);
    await this.synced();
    const pod = this.runningPod(name);
    if (pod) await this.exec(pod, sh.keysArgv(keys));
  }

  async setMeta(name: string, key: string, value: string): Promise<void> {
    validateSessionName(name);
    validateMetaKey(key);
    await this.synced();
    const pod = this.runningPod(name);
    if (!pod) throw new NotFoundError('session', name);
    await this.mustExec(name, pod, sh.setMetaArgv(key, value), undefined, 'set-meta');
  }

  async getMeta(name: string, key: string): Promise<string> {
    validateSessionName(name);
    validateMetaKey(key);
    await this.synced();
    const pod = this.runningPod(name);
    if (!pod) return '';
    const r = await this.exec(pod, sh.getMetaArgv(key));
    return r.code === 0 ? sh.metaValue(r.stdout.toString(), key) : '';
  }

  async removeMeta(name: string, key: string): Promise<void> {
    validateSessionName(name);
    validateMetaKey(key);
    await this.synced();
    const pod = this.runningPod(name);
    if (pod) await this.exec(pod, sh.removeMetaArgv(key));
  }

  async peek(name: string, lines: number): Promise<string> {
    validateSessionName(name);
    await this.synced();
    const pod = this.podOf(name);
    if (!pod) return '';
    const podName = pod.metadata!.name!;
    if (!viewPod(pod).running) {
      // Ended: the entrypoint printed the end of the screen to the pod log.
      return this.api.log(podName, CONTAINER, lines > 0 ? lines : undefined).catch(() => '');
    }
    const r = await this.exec(podName, sh.peekArgv(lines));
    return r.code === 0 ? r.stdout.toString() : '';
  }

  async getLastActivity(name: string): Promise<number> {
    validateSessionName(name);
    await this.synced();
    const pod = this.runningPod(name);
    if (!pod) return 0;
    const r = await this.exec(pod, sh.activityArgv());
    const t = Number(r.stdout.toString().trim()) * 1000;
    this.probed.set(name, Date.now());
    if (r.code === 0 && t > 0) this.activity.set(name, t);
    return this.activity.get(name) ?? 0;
  }

  async clearScrollback(name: string): Promise<void> {
    validateSessionName(name);
    await this.synced();
    const pod = this.runningPod(name);
    if (pod) await this.exec(pod, sh.clearArgv());
  }

  async copyTo(name: string, src: string, relDst: string): Promise<void> {
    validateSessionName(name);
    await this.synced();
    const pod = this.podOf(name);
    // A pod without a workingDir runs in the image's: a path relative to it.
    const wd = pod?.spec?.containers.find((c) => c.name === CONTAINER)?.workingDir;
    const inside = resolveInside(wd ?? '/work', relDst);
    const dst = wd ? inside : path.posix.relative('/work', inside);
    const running = this.runningPod(name);
    if (running) await this.copyPath(running, src, dst, false);
  }

  close(): Promise<void> {
    clearInterval(this.refresher);
    this.informer.close();
    return Promise.resolve();
  }

  private async mustExec(
    name: string,
    pod: string,
    argv: readonly string[],
    stdin: string | undefined,
    op: string,
  ): Promise<void> {
    const r = await this.exec(pod, argv, stdin);
    if (r.code === 0) return;
    // Gone meanwhile: best-effort ops do not fail on that.
    if (!this.runningPod(name) && op !== 'set-meta') return;
    if (!this.runningPod(name)) throw new NotFoundError('session', name);
    throw new GcError(
      'unavailable',
      `${op} of session ${name} in pod ${pod}: ${r.error ?? r.stderr.trim()}`,
    );
  }

  /** Renew activity times older than `every`, a few execs at a time, off the tick. */
  private refreshActivity(every: number): void {
    if (this.informer.staleReason !== undefined) return;
    const now = Date.now();
    const due = [...this.bySession.keys()].filter(
      (n) => this.runningPod(n) && now - (this.probed.get(n) ?? 0) >= every,
    );
    mapLimit(due, 4, async (n) => {
      await this.getLastActivity(n).catch(() => 0);
    }).catch(() => undefined);
  }
}
