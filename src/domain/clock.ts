/**
 * Time as the engine sees it. Every time comparison in SQL takes `now` from a
 * Clock as a parameter (never SQL `now()`), so tests can drive time and any
 * instance can act on timestamps written by another.
 */

/** A source of the current time. */
export interface Clock {
  now(): Date;
}

/** The real wall clock. */
export const systemClock: Clock = {
  now: () => new Date(),
};

/** A clock that only moves when told to; for tests. */
export class ManualClock implements Clock {
  #ms: number;

  /** Starts at `start` (default 2030-01-01T00:00:00Z, well after any real test run). */
  constructor(start: Date | number = Date.UTC(2030, 0, 1)) {
    this.#ms = typeof start === 'number' ? start : start.getTime();
  }

  now(): Date {
    return new Date(this.#ms);
  }

  /** Moves time forward by `ms` (which must not be negative) and returns the new time. */
  advance(ms: number): Date {
    if (!(ms >= 0)) throw new RangeError(`cannot move a clock by ${ms} ms`);
    this.#ms += ms;
    return this.now();
  }

  /** Jumps to `at`, which must not be earlier than now. */
  set(at: Date): void {
    if (at.getTime() < this.#ms) throw new RangeError('a clock cannot go backwards');
    this.#ms = at.getTime();
  }
}
