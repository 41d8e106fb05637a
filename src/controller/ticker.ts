/**
 * When the controller ticks: at once on poke, every patrol interval (or
 * earlier, at the next wake the last tick asked for), and soon after writes
 * (nudge), never overlapping. Write-driven ticks start at most once per
 * nudge gap, so a stream of writes costs a few ticks a second, not one tick
 * (and one provider snapshot) per write.
 */
export interface TickerOptions {
  /** One tick; must not reject. */
  run: () => Promise<void>;
  /** Whether ticks may start (the controller is running). */
  active: () => boolean;
  /** Milliseconds from the end of a tick to the next timed tick. */
  idleWait: () => number;
  nudgeGapMs: number;
}

export class Ticker {
  private timer: NodeJS.Timeout | undefined;
  /** When the timer fires (performance.now()), Infinity when unset. */
  private timerDue = Infinity;
  private running: Promise<void> | undefined;
  private pokeAgain = false;
  private nudgeAgain = false;
  private lastStart = -Infinity;

  constructor(private readonly o: TickerOptions) {}

  /** Tick as soon as possible (after the tick in flight, if any). */
  poke(): void {
    if (!this.o.active()) return;
    if (this.running) {
      this.pokeAgain = true;
      return;
    }
    this.clear();
    this.nudgeAgain = false;
    this.lastStart = performance.now();
    this.running = this.o.run().finally(() => {
      this.running = undefined;
      if (!this.o.active()) return;
      if (this.pokeAgain) {
        this.pokeAgain = false;
        this.poke();
        return;
      }
      let wait = this.o.idleWait();
      if (this.nudgeAgain) wait = Math.min(wait, this.nudgeWait());
      this.nudgeAgain = false;
      this.schedule(wait);
    });
  }

  /** Something changed: tick soon, no sooner than one nudge gap after the last tick started. */
  nudge(): void {
    if (!this.o.active()) return;
    if (this.running) {
      this.nudgeAgain = true;
      return;
    }
    const wait = this.nudgeWait();
    if (performance.now() + wait < this.timerDue) this.schedule(wait);
  }

  /** The tick in flight, if any (await in a loop to let pokes drain). */
  get inFlight(): Promise<void> | undefined {
    return this.running;
  }

  /** Cancel the timer (the controller stops; a tick in flight finishes). */
  stop(): void {
    this.clear();
  }

  private nudgeWait(): number {
    return Math.max(0, this.lastStart + this.o.nudgeGapMs - performance.now());
  }

  private schedule(wait: number): void {
    this.clear();
    this.timerDue = performance.now() + wait;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerDue = Infinity;
      this.poke();
    }, wait);
    this.timer.unref?.();
  }

  private clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerDue = Infinity;
  }
}
