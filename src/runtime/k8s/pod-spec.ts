/**
 * The agent pod: its name, labels and manifest, and what its status says of
 * the session. Pure functions. The labels and the annotation are the ones
 * Gas City's own Kubernetes provider puts on its pods (`app=gc-agent`,
 * `gc-session`, `gc-agent`, annotation `gc-session-name`; container
 * `agent`; tmux session `main` inside), so a city can move between the two
 * with its pods running.
 */
import { createHash } from 'node:crypto';
import type { V1Pod } from '@kubernetes/client-node';
import { ValidationError } from '../../core/index.js';

/** Label every agent pod carries; the informer watches this selector. */
export const APP_LABEL = 'app';
export const APP_VALUE = 'gc-agent';
export const SESSION_LABEL = 'gc-session';
export const AGENT_LABEL = 'gc-agent';
/** The exact session name (labels are sanitized, this is not). */
export const SESSION_ANNOTATION = 'gc-session-name';
export const CONTAINER = 'agent';
/** The tmux session inside every agent pod. */
export const TMUX_SESSION = 'main';
const RESERVED_LABELS = new Set([APP_LABEL, SESSION_LABEL, AGENT_LABEL]);

/**
 * A DNS-1123 form of `name` at most `max` long: lower case, `_` as `-`.
 * When that changed the name (case, `_`, length), a hash of the original
 * keeps two names that differ only there apart.
 */
export function sanitizeName(name: string, max = 63): string {
  let s = name.toLowerCase().replace(/[^a-z0-9-]/g, '-');
  if (s === name && s.length <= max && /^[a-z0-9]/.test(s) && /[a-z0-9]$/.test(s)) return s;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  s = s.replace(/^-+|-+$/g, '').slice(0, max - hash.length - 1);
  return `${s.replace(/-+$/, '')}-${hash}`.replace(/^-/, 'x');
}

export interface PodSettings {
  namespace: string;
  image: string;
  cpuRequest: string;
  memRequest: string;
  cpuLimit: string;
  memLimit: string;
  serviceAccount?: string;
  nodeSelector?: Record<string, string>;
  labels?: Record<string, string>;
  /** Seconds Kubernetes waits after SIGTERM before SIGKILL. */
  graceSeconds: number;
}

/** Reject extra labels gc owns or Kubernetes would refuse, naming the key. */
export function checkExtraLabels(labels: Record<string, string> | undefined): void {
  for (const [k, v] of Object.entries(labels ?? {})) {
    if (RESERVED_LABELS.has(k)) {
      throw new ValidationError(`label ${k} is set by gc`, { where: 'session.k8s.labels' });
    }
    if (!/^([a-z0-9.-]{1,253}\/)?[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/.test(k)) {
      throw new ValidationError(`${JSON.stringify(k)} is not a valid label key`, {
        where: 'session.k8s.labels',
      });
    }
    if (!/^([A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?)?$/.test(v)) {
      throw new ValidationError(`${JSON.stringify(v)} is not a valid label value`, {
        where: `session.k8s.labels.${k}`,
      });
    }
  }
}

/**
 * What the container runs: wait until the agent's pane has started (it
 * holds tmux lock gc-agent while the agent runs), then wait for that lock:
 * the pane lets go when the agent ends, after writing its exit status
 * (tmux hooks let go too when the pane dies or the session closes). Then
 * print the end of the screen (the pod log keeps it after the pod ends)
 * and exit with the agent's exit status, which becomes the container's.
 * No polling once started. Fixed text: nothing in it comes from
 * configuration.
 */
export const ENTRYPOINT = [
  'd="${TMPDIR:-/tmp}/gc-session"',
  'while [ ! -e "$d/agent.started" ]; do sleep 0.2; done',
  'tmux wait-for -L gc-agent 2>/dev/null',
  'st=$(cat "$d/agent.exit" 2>/dev/null)',
  '[ -n "$st" ] || st=$(tmux display-message -p -t main "#{pane_dead_status}" 2>/dev/null)',
  'tmux capture-pane -p -t main -S -200 2>/dev/null',
  'tmux kill-server 2>/dev/null',
  'exit "${st:-1}"',
].join('\n');

/** The pod of session `name` (the agent's name from its env, for the gc-agent label). */
export function buildPod(
  name: string,
  settings: PodSettings,
  workDir: string | undefined,
  agent: string | undefined,
): V1Pod {
  const label = sanitizeName(name);
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: label,
      namespace: settings.namespace,
      labels: {
        ...settings.labels,
        [APP_LABEL]: APP_VALUE,
        [SESSION_LABEL]: label,
        ...(agent ? { [AGENT_LABEL]: sanitizeName(agent) } : {}),
      },
      annotations: { [SESSION_ANNOTATION]: name },
    },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: settings.graceSeconds,
      automountServiceAccountToken: false,
      ...(settings.serviceAccount ? { serviceAccountName: settings.serviceAccount } : {}),
      ...(settings.nodeSelector ? { nodeSelector: settings.nodeSelector } : {}),
      containers: [
        {
          name: CONTAINER,
          image: settings.image,
          imagePullPolicy: 'IfNotPresent',
          ...(workDir ? { workingDir: workDir } : {}),
          command: ['/bin/sh', '-c'],
          args: [ENTRYPOINT],
          env: [
            { name: 'GC_SESSION_NAME', value: name },
            { name: 'TERM', value: 'xterm-256color' },
          ],
          stdin: true,
          tty: true,
          resources: {
            requests: { cpu: settings.cpuRequest, memory: settings.memRequest },
            limits: { cpu: settings.cpuLimit, memory: settings.memLimit },
          },
        },
      ],
    },
  };
}

/** The session a pod belongs to: the annotation, else (another tool's pod) the label. */
export function sessionOfPod(pod: V1Pod): string | undefined {
  return pod.metadata?.annotations?.[SESSION_ANNOTATION] ?? pod.metadata?.labels?.[SESSION_LABEL];
}

export interface PodView {
  /** Pending or Running and not being deleted: the session is there. */
  alive: boolean;
  /** Running: execs reach tmux. */
  running: boolean;
  ended: boolean;
  exitCode?: number;
  /** The container started, epoch ms; 0 when not yet. */
  startedAt: number;
  created: number;
  deleting: boolean;
  /** Why a pod that ended or cannot start did so (reason and message). */
  why?: string;
}

/** What a pod's status says of its session. */
export function viewPod(pod: V1Pod): PodView {
  const phase = pod.status?.phase ?? 'Pending';
  const deleting = Boolean(pod.metadata?.deletionTimestamp);
  const c = pod.status?.containerStatuses?.find((s) => s.name === CONTAINER);
  const terminated = c?.state?.terminated;
  const ended = phase === 'Succeeded' || phase === 'Failed' || Boolean(terminated);
  const waiting = c?.state?.waiting;
  const startedAt = c?.state?.running?.startedAt ?? terminated?.startedAt;
  const why =
    terminated?.reason ?? (waiting ? `${waiting.reason ?? ''} ${waiting.message ?? ''}` : '');
  return {
    alive: !ended && !deleting,
    running: phase === 'Running' && !deleting && !ended,
    ended,
    ...(terminated ? { exitCode: terminated.exitCode } : {}),
    startedAt: startedAt ? new Date(startedAt).getTime() : 0,
    created: pod.metadata?.creationTimestamp
      ? new Date(pod.metadata.creationTimestamp).getTime()
      : 0,
    deleting,
    ...(why.trim() ? { why: why.trim() } : {}),
  };
}

/**
 * Of several pods of one session, the one gc uses: a live one before an
 * ended one, then the oldest (the one that was there first), then by name.
 */
export function pickPod(pods: readonly V1Pod[]): V1Pod | undefined {
  const rank = (p: V1Pod) => (viewPod(p).alive ? 0 : 1);
  return [...pods].sort(
    (a, b) =>
      rank(a) - rank(b) ||
      viewPod(a).created - viewPod(b).created ||
      (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''),
  )[0];
}
