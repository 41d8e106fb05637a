/**
 * The city server's convoy patrol: patrolMolecules then patrolConvoys every
 * second (and at once when kicked: a convoy changed, a merge landed, a
 * molecule was poured), never two at a time. Molecules go first: a root
 * they complete lets its convoy close in the same pass.
 */
import { errorMessage } from '../core/index.js';
import type { CityOps } from '../city/index.js';
import {
  patrolConvoys,
  type ConvoyNotifier,
  type PatrolResult,
  type PendingMerge,
} from './convoy.js';
import { patrolMolecules } from './molecule.js';

export class ConvoyPatrol {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(
    private readonly ops: CityOps,
    private readonly pending: PendingMerge,
    private readonly log: (line: string) => void,
    private readonly everyMs = 1000,
    private readonly onPass: (r: PatrolResult) => void = () => undefined,
    /** Mail to a closed convoy's owner and notify. */
    private readonly notify?: ConvoyNotifier,
  ) {}

  start(): void {
    this.timer = setInterval(() => this.kick(), this.everyMs);
    this.timer.unref();
    this.kick();
  }

  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = patrolMolecules(this.ops, Date.now(), this.log)
      .catch((e: unknown) => this.log(`molecules: ${errorMessage(e)}`))
      .then(() => patrolConvoys(this.ops, this.pending, Date.now(), this.log, this.notify))
      .then(this.onPass, (e: unknown) => this.log(`convoys: ${errorMessage(e)}`))
      .finally(() => {
        this.running = undefined;
        if (this.again) {
          this.again = false;
          this.kick();
        }
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
