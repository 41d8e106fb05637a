/** Pick and build the session provider named by `[session] provider`. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { ValidationError, resolveScript } from '../core/index.js';
import { ExecProvider } from './exec.js';
import { ClientPodApi } from './k8s/client.js';
import { ProviderUnavailableError } from './errors.js';
import { checkExtraLabels } from './k8s/pod-spec.js';
import { K8sProvider } from './k8s/provider.js';
import { FakeProvider } from './fake.js';
import type { Provider } from './provider.js';
import { SubprocessProvider } from './subprocess.js';
import { TmuxProvider, tmuxSocketFor } from './tmux.js';

export interface OpenProviderOptions {
  /** The city directory: names the tmux socket, anchors relative script paths. */
  cityRoot: string;
  /** Where session state and logs go. Default `<cityRoot>/.gc/sessions`. */
  stateDir?: string;
  stopGraceMs?: number;
  startTimeoutMs?: number;
  /** `[session.k8s]`, for provider `k8s`. */
  k8s?: K8sSettings;
}

/** The `[session.k8s]` keys the provider reads. */
export interface K8sSettings {
  namespace: string;
  image?: string | undefined;
  context?: string | undefined;
  cpu_request: string;
  mem_request: string;
  cpu_limit: string;
  mem_limit: string;
  service_account?: string | undefined;
  node_selector?: Record<string, string> | undefined;
  labels?: Record<string, string> | undefined;
  api_url?: string | undefined;
  kubeconfig?: string | undefined;
}

/**
 * `""` and `tmux`: tmux on the city's own socket; `subprocess`; `exec:<script>`
 * (relative to the city root); `fake` (in memory, for tests and dry runs).
 */
export function openProvider(spec: string, options: OpenProviderOptions): Provider {
  const stateDir = options.stateDir ?? path.join(options.cityRoot, '.gc', 'sessions');
  const common = {
    stateDir,
    ...(options.stopGraceMs === undefined ? {} : { stopGraceMs: options.stopGraceMs }),
    ...(options.startTimeoutMs === undefined ? {} : { startTimeoutMs: options.startTimeoutMs }),
  };
  if (spec === '' || spec === 'tmux') {
    return new TmuxProvider({ socket: tmuxSocketFor(options.cityRoot), ...common });
  }
  if (spec === 'subprocess') return new SubprocessProvider(common);
  if (spec === 'fake') return new FakeProvider();
  if (spec.startsWith('exec:')) {
    const script = spec.slice('exec:'.length);
    if (!script)
      throw new ValidationError('exec: needs a script path', { where: 'session.provider' });
    return new ExecProvider(resolveScript(script, options.cityRoot));
  }
  if (spec === 'k8s') return openK8s(options.k8s, options);
  throw new ValidationError(`unknown session provider ${JSON.stringify(spec)}`, {
    where: 'session.provider',
  });
}

function openK8s(k: K8sSettings | undefined, options: OpenProviderOptions): K8sProvider {
  const namespace = k?.namespace ?? 'gc';
  checkExtraLabels(k?.labels);
  const kubeconfig = k?.kubeconfig ? path.resolve(options.cityRoot, k.kubeconfig) : undefined;
  // The cluster is reached (and the kubeconfig read) on first use; a named file must exist now.
  if (kubeconfig && !existsSync(kubeconfig)) {
    throw new ProviderUnavailableError(
      'k8s',
      `no usable kubeconfig: ${kubeconfig} does not exist`,
      {
        fix: 'set [session.k8s] kubeconfig to an existing file, or leave it unset ($KUBECONFIG, ~/.kube/config)',
      },
    );
  }
  return new K8sProvider({
    api: new ClientPodApi(
      { ...(kubeconfig ? { kubeconfig } : {}), ...(k?.context ? { context: k.context } : {}) },
      namespace,
    ),
    namespace,
    ...(k?.image ? { image: k.image } : {}),
    ...(k
      ? {
          cpuRequest: k.cpu_request,
          memRequest: k.mem_request,
          cpuLimit: k.cpu_limit,
          memLimit: k.mem_limit,
        }
      : {}),
    ...(k?.service_account ? { serviceAccount: k.service_account } : {}),
    ...(k?.node_selector ? { nodeSelector: k.node_selector } : {}),
    ...(k?.labels ? { labels: k.labels } : {}),
    ...(k?.api_url ? { apiUrl: k.api_url } : {}),
    ...(options.stopGraceMs === undefined ? {} : { stopGraceMs: options.stopGraceMs }),
    ...(options.startTimeoutMs === undefined ? {} : { startTimeoutMs: options.startTimeoutMs }),
    kubectlArgs: [
      ...(kubeconfig ? ['--kubeconfig', kubeconfig] : []),
      ...(k?.context ? ['--context', k.context] : []),
    ],
  });
}
