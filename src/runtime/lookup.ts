/** Looking a session up by name before acting on it, for commands and routes. */
import { NotFoundError } from '../core/index.js';
import type { Provider, SessionSnapshot } from './provider.js';
import { validateSessionName } from './validate.js';

/**
 * The session named `name`, live or dead (one snapshot call), or a
 * NotFoundError that says how to find the right name. Commands that act on
 * a session call this first, so a typo is "not found", never a silent
 * success.
 */
export async function requireSession(provider: Provider, name: string): Promise<SessionSnapshot> {
  validateSessionName(name);
  const found = (await provider.snapshot(name)).find((s) => s.name === name);
  if (!found) {
    throw new NotFoundError('session', name, { fix: 'gc session list shows the sessions' });
  }
  return found;
}
