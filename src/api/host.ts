/** What the API routes need from the server that hosts them. */
import type { CityOps, KeyRing } from '../city/index.js';
import type { Controller, CitySpec } from '../controller/index.js';
import type { Provider } from '../runtime/index.js';

export interface ApiHost {
  readonly root: string;
  readonly ops: CityOps;
  readonly keys: KeyRing;
  readonly controller: Controller;
  readonly provider: Provider;
  readonly spec: CitySpec;
  readonly suspended: boolean;
  readonly state: string;
  readonly startedAt: number;
  reload(): Promise<{ ok: boolean; error?: string }>;
  setSuspended(suspended: boolean): Promise<void>;
  stop(reason?: string): Promise<void>;
}
