/**
 * One alert instance's state machine, pure: ok -> pending (the condition
 * holds) -> firing (it held for `for`) -> ok again once it has been clear
 * for `clear_for`. A value that dips under the threshold and back while
 * firing neither resolves nor fires again (flapping is damped), and one
 * that crosses back while pending starts its `for` over.
 */

export interface AlertState {
  state: 'ok' | 'pending' | 'firing';
  /** pending: when the condition began; firing: when it fired. */
  since: number;
  /** firing: when the condition last stopped holding (undefined while it holds). */
  clearSince?: number;
  /** The last value seen. */
  value: number;
}

export interface AlertTiming {
  above: number;
  forMs: number;
  clearForMs: number;
}

export interface AlertStep {
  next: AlertState;
  transition?: 'fired' | 'resolved';
}

export const OK: AlertState = { state: 'ok', since: 0, value: 0 };

export function stepAlert(prev: AlertState, value: number, now: number, t: AlertTiming): AlertStep {
  const holds = value > t.above;
  switch (prev.state) {
    case 'ok':
      if (!holds) return { next: { state: 'ok', since: prev.since, value } };
      if (t.forMs <= 0)
        return { next: { state: 'firing', since: now, value }, transition: 'fired' };
      return { next: { state: 'pending', since: now, value } };
    case 'pending':
      if (!holds) return { next: { state: 'ok', since: now, value } };
      if (now - prev.since >= t.forMs) {
        return { next: { state: 'firing', since: now, value }, transition: 'fired' };
      }
      return { next: { ...prev, value } };
    case 'firing': {
      if (holds) return { next: { state: 'firing', since: prev.since, value } };
      const clearSince = prev.clearSince ?? now;
      if (now - clearSince >= t.clearForMs) {
        return { next: { state: 'ok', since: now, value }, transition: 'resolved' };
      }
      return { next: { state: 'firing', since: prev.since, clearSince, value } };
    }
  }
}
