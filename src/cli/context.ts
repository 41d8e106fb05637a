/**
 * Resolving which city a command acts on and opening a client for it.
 * Order: --city, then GC_CITY_ROOT, then the nearest city.toml upward.
 */
import { resolve } from 'node:path';
import {
  RemoteCity,
  actorFromEnv,
  actorIsChosen,
  openLocalCity,
  type CityClient,
} from '../client/index.js';
import { GcError, cityOfRigDir, findCityRoot } from '../core/index.js';

/** A guessed actor (the login name) goes as a default the server may replace. */
const actorOptions = (opts: GlobalOptions) => ({
  actorIsDefault: !actorIsChosen(opts.actor),
});

export interface GlobalOptions {
  city?: string;
  actor?: string;
  json?: boolean;
}

export function cityRoot(opts: GlobalOptions): string {
  if (opts.city) return resolve(opts.city);
  if (process.env.GC_CITY_ROOT) return resolve(process.env.GC_CITY_ROOT);
  const found = findCityRoot(process.cwd());
  if (found) return found;
  // A rig's directory, which usually lives outside its city: the registry knows.
  const rig = cityOfRigDir(process.cwd());
  if (rig) return rig.root;
  throw new GcError(
    'not_found',
    'not in a city: no city.toml here or in any parent directory, and no registered city has a rig here',
    {
      fix: 'run `gc init` to create one, cd into a city, pass --city DIR, or `gc register` the city this rig belongs to (`gc cities` lists them)',
    },
  );
}

export async function withCity<T>(
  opts: GlobalOptions,
  command: string,
  fn: (city: CityClient) => Promise<T>,
  mode: { readonly?: boolean } = {},
): Promise<T> {
  // Inside an agent session: always the API, with the session's own token.
  const agent = opts.city
    ? undefined
    : RemoteCity.fromEnv(opts.actor ?? actorFromEnv(), process.env, actorOptions(opts));
  if (agent) return fn(agent);
  const root = cityRoot(opts);
  // A running city server owns the state: talk to it. Otherwise open it here.
  const remote = await RemoteCity.connect(root, opts.actor ?? actorFromEnv(), actorOptions(opts));
  if (remote) return fn(remote);
  // No server: open the city files here (the heavy part of the client, loaded only now).
  const city = await openLocalCity({
    root,
    command,
    ...(opts.actor ? { actor: opts.actor } : {}),
    ...(mode.readonly ? { readonly: true } : {}),
  });
  try {
    return await fn(city);
  } finally {
    await city.close();
  }
}

/** The city root and a client of its running server (undefined when none runs). */
export async function connectServer(
  opts: GlobalOptions,
): Promise<{ root: string; city: RemoteCity | undefined }> {
  const root = cityRoot(opts);
  const agent = opts.city
    ? undefined
    : RemoteCity.fromEnv(opts.actor ?? actorFromEnv(), process.env, actorOptions(opts));
  if (agent) return { root, city: agent };
  return {
    root,
    city: await RemoteCity.connect(root, opts.actor ?? actorFromEnv(), actorOptions(opts)),
  };
}

/** A client of the running server, or a clear error when the city is not running. */
export async function requireServer(opts: GlobalOptions): Promise<RemoteCity> {
  const { city } = await connectServer(opts);
  if (!city) throw new GcError('unavailable', 'the city is not running', { fix: 'gc start' });
  return city;
}
