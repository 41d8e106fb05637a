/** Which host a server is on, as the servers table names it. */
import { hostname } from 'node:os';

/** The name this host goes by in gc_servers (GC_SERVER_HOST overrides, for tests and containers). */
export function serverHost(env: NodeJS.ProcessEnv = process.env): string {
  return env.GC_SERVER_HOST || hostname();
}
