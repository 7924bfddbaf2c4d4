/** Reconnect delays: exponential growth with jitter, reset after a successful Welcome. */

/** Settings of {@link Backoff}, in milliseconds. */
export interface BackoffOptions {
  /** Ceiling of the first delay (default 100). */
  initialMs?: number;
  /** Largest ceiling (default 5000). */
  maxMs?: number;
}

/**
 * Delays between reconnect attempts. Attempt `n` (1-based) waits a delay drawn
 * uniformly from `[d/2, d]` where `d = min(maxMs, initialMs * 2^(n-1))` ("equal
 * jitter"): workers that lost the same server do not reconnect in lockstep, and no
 * delay collapses to zero.
 */
export class Backoff {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly #random: () => number;
  #attempt = 0;

  constructor(options: BackoffOptions = {}, random: () => number = Math.random) {
    const initialMs = options.initialMs ?? 100;
    const maxMs = options.maxMs ?? Math.max(5_000, initialMs);
    if (!(initialMs > 0) || !(maxMs >= initialMs)) throw new RangeError('reconnect needs 0 < initialMs <= maxMs');
    this.initialMs = initialMs;
    this.maxMs = maxMs;
    this.#random = random;
  }

  /** Delays handed out since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** Upper bound of the delay before reconnect attempt `attempt` (1-based). */
  ceiling(attempt: number): number {
    const exponent = Math.min(Math.max(attempt - 1, 0), 52);
    return Math.min(this.maxMs, this.initialMs * 2 ** exponent);
  }

  /** The delay, in milliseconds, to wait before the next attempt. */
  next(): number {
    this.#attempt += 1;
    const ceiling = this.ceiling(this.#attempt);
    return ceiling / 2 + (this.#random() * ceiling) / 2;
  }

  /** Starts again from the smallest delay (after a successful connect). */
  reset(): void {
    this.#attempt = 0;
  }
}
