/** The server's typed errors, rebuilt from an error answer. */
import { GcError, type ErrorCode } from '../core/index.js';

/** The server's typed error from an error answer's JSON body. */
export function errorFromData(status: number, data: unknown): GcError {
  const err = (
    data as
      | {
          error?: {
            code?: string;
            message?: string;
            details?: Record<string, unknown>;
            fix?: string;
          };
        }
      | undefined
  )?.error;
  return new GcError((err?.code ?? 'internal') as ErrorCode, err?.message ?? `HTTP ${status}`, {
    details: err?.details ?? {},
    ...(err?.fix ? { fix: err.fix } : {}),
  });
}
