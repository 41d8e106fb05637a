/**
 * The session provider as the leader's work sees it: starting, stopping
 * and interrupting sessions go through only while this server leads (its
 * lease confirmed within a lease time, by its own monotonic clock). A
 * server paused past its lease and resumed, or cut off from the database,
 * is refused before it touches a session the next leader now owns.
 * Everything else (reading, nudging, meta) goes straight through.
 */
import { GcError } from '../core/index.js';
import type {
  Provider,
  StartConfig,
  StartOptions,
  StartRequest,
  StartedEach,
} from '../runtime/index.js';

export class NotLeaderError extends GcError {
  constructor(what: string) {
    super('unavailable', `this server does not lead the city now, so it may not ${what}`, {
      fix: 'the leader does this; retry against the city (any server forwards it there)',
    });
  }
}

export function fencedProvider(inner: Provider, mayAct: () => boolean): Provider {
  /** The refusal, as the rejected promise a provider call would give. */
  const refused = (what: string): Promise<never> | undefined =>
    mayAct() ? undefined : Promise.reject(new NotLeaderError(what));
  const guarded: Partial<Record<keyof Provider, unknown>> = {
    start: (name: string, config: StartConfig, options?: StartOptions) => {
      return refused(`start session ${name}`) ?? inner.start(name, config, options);
    },
    stop: (name: string) => {
      return refused(`stop session ${name}`) ?? inner.stop(name);
    },
    interrupt: (name: string) => {
      return refused(`interrupt session ${name}`) ?? inner.interrupt(name);
    },
  };
  if (inner.startMany) {
    guarded.startMany = (requests: readonly StartRequest[], onEach?: StartedEach) => {
      return refused(`start ${requests.length} session(s)`) ?? inner.startMany!(requests, onEach);
    };
  }
  if (inner.stopMany) {
    guarded.stopMany = (names: readonly string[]) => {
      return refused(`stop ${names.length} session(s)`) ?? inner.stopMany!(names);
    };
  }
  if (inner.interruptMany) {
    guarded.interruptMany = (names: readonly string[]) => {
      return refused(`interrupt ${names.length} session(s)`) ?? inner.interruptMany!(names);
    };
  }
  // Everything else is the provider's own, called on the provider itself.
  return new Proxy(inner, {
    get(target, prop) {
      if (typeof prop === 'string' && prop in guarded) return guarded[prop as keyof Provider];
      const v: unknown = Reflect.get(target, prop, target);
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}
