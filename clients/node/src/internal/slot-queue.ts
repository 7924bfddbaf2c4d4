/**
 * The worker's local concurrency limit: at most `limit` jobs run at once; the rest
 * wait, in arrival order. The server already never sends more steps than the credit
 * (`concurrency`), but steps of an abandoned session may still be finishing when a
 * new session's steps arrive, and a lowered concurrency takes effect before the
 * server hears of it: this queue keeps the promise "never more than `concurrency`
 * handlers at once" whatever happens on the wire.
 */

/** A FIFO of waiting jobs with a bound on running ones. */
export class SlotQueue<T> {
  #limit: number;
  #running = 0;
  readonly #waiting: T[] = [];
  readonly #start: (job: T) => void;

  /** `start(job)` is called when a job gets a slot; the job must call {@link release} once it ends. */
  constructor(limit: number, start: (job: T) => void) {
    this.#limit = SlotQueue.checkLimit(limit);
    this.#start = start;
  }

  /** Throws RangeError unless `limit` is an integer >= 1; returns it. */
  static checkLimit(limit: number): number {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`concurrency must be an integer >= 1, got ${limit}`);
    return limit;
  }

  /** Jobs holding a slot. */
  get running(): number {
    return this.#running;
  }

  /** Jobs waiting for a slot. */
  get waiting(): number {
    return this.#waiting.length;
  }

  get limit(): number {
    return this.#limit;
  }

  /** Changes the bound; raising it starts waiting jobs at once, lowering it lets running ones finish. */
  setLimit(limit: number): void {
    this.#limit = SlotQueue.checkLimit(limit);
    this.#pump();
  }

  /** Adds a job; it starts now if a slot is free. */
  push(job: T): void {
    this.#waiting.push(job);
    this.#pump();
  }

  /** Removes and returns the waiting jobs `match` selects (they never start). */
  remove(match: (job: T) => boolean): T[] {
    const removed: T[] = [];
    for (let i = this.#waiting.length - 1; i >= 0; i--) {
      const job = this.#waiting[i] as T;
      if (match(job)) {
        this.#waiting.splice(i, 1);
        removed.unshift(job);
      }
    }
    return removed;
  }

  /** Frees the slot of a job that ended; the next waiting job starts. */
  release(): void {
    if (this.#running === 0) throw new Error('SlotQueue.release() without a running job');
    this.#running -= 1;
    this.#pump();
  }

  #pump(): void {
    while (this.#running < this.#limit && this.#waiting.length > 0) {
      const job = this.#waiting.shift() as T;
      this.#running += 1;
      this.#start(job);
    }
  }
}
