/**
 * What the provider is asked to start for one desired session: its start
 * config rendered for its own name and work dir, the city's environment
 * (its token among it) and, as meta, the fingerprint that marks a finished
 * start. Pure: the controller prepares the work dir and the token first.
 */
import type { StartRequest } from '../runtime/index.js';
import type { DesiredSession } from './desired.js';
import { META } from './options.js';
import { aliasOf, type CitySpec, type Wake } from './spec.js';

export function startRequest(
  spec: CitySpec,
  d: DesiredSession,
  o: {
    sessionEnv: Record<string, string>;
    token: string | undefined;
    /** The session's own work dir (a rig worktree), when it has one. */
    workDir: string | undefined;
    deadline: number;
    /** The session key of this start, and whether it resumes (session-keys.ts). */
    wake?: Wake;
  },
): StartRequest {
  const workDir = o.workDir ?? d.config.work_dir;
  const agent = spec.agents.find((x) => x.name === d.agent);
  const alias = agent ? aliasOf(agent, d.name) : undefined;
  const env = {
    ...d.config.env,
    ...o.sessionEnv,
    GC_CITY: spec.name,
    GC_CITY_ROOT: spec.root,
    GC_AGENT: d.agent,
    GC_SESSION_NAME: d.name,
    GC_RIG: d.rig ?? '',
    ...(o.wake ? { GC_SESSION_KEY: o.wake.key } : {}),
    ...(alias ? { GC_SESSION_ALIAS: alias } : {}),
    ...(o.token !== undefined ? { GC_TOKEN: o.token } : {}),
  };

  // Rendered for this session: its name and its own work dir in the prompt.
  const config = agent && workDir ? agent.startFor(d.name, workDir, o.wake) : d.config;
  return {
    name: d.name,
    config: { ...config, env },
    options: { deadline: o.deadline },
    meta: { [META.fingerprint]: d.fingerprint },
  };
}
