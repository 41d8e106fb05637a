/** Pick and build the session provider named by `[session] provider`. */
import path from 'node:path';
import { UnsupportedError, ValidationError } from '../core/index.js';
import { ExecProvider } from './exec.js';
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
    return new ExecProvider(path.resolve(options.cityRoot, script));
  }
  if (spec === 'k8s') {
    throw new UnsupportedError('the k8s session provider is not available in this build', {
      fix: 'use "tmux", "subprocess" or "exec:<script>"',
    });
  }
  throw new ValidationError(`unknown session provider ${JSON.stringify(spec)}`, {
    where: 'session.provider',
  });
}
