/**
 * One subscriber of the event bus: an async iterator of lifecycle events matching a
 * filter, in increasing id order, each delivered once.
 *
 * A subscription with a start cursor first *replays*: it reads matching events from
 * the table, page by page as the consumer asks for them, up to the bus's cursor (every
 * id at or below it is final, see `EventBus`). When it has read up to the bus's
 * current cursor it joins the live fan-out in the same synchronous step, so the first
 * live event is the first one after what it replayed: no gap, no duplicate. Without
 * a start cursor it joins the live fan-out at once.
 *
 * Live events wait in a bounded queue until the consumer takes them; a consumer that
 * falls `bufferSize` events behind is ended with ResourceExhaustedError
 * `SUBSCRIBER_TOO_SLOW` rather than letting the queue grow.
 */
import type { LifecycleEvent } from '../domain/events.js';
import { OutOfRangeError, ResourceExhaustedError } from '../domain/errors.js';
import type { EventRangeFilter } from '../store/event-log.js';
import { oldestEventId, readEventRange } from '../store/event-log.js';
import type { Executor } from '../store/sql-helpers.js';

/** Which events a subscriber receives; fields combine with AND, absent/empty = any. */
export type EventFilter = EventRangeFilter;

/** Whether `event` passes `filter` (the same rules `readEventRange` applies in SQL). */
export function eventMatches(filter: EventFilter, event: LifecycleEvent): boolean {
  if (filter.taskId && event.taskId !== filter.taskId) return false;
  if (filter.namespace && event.namespace !== filter.namespace) return false;
  if (filter.taskName && event.taskName !== filter.taskName) return false;
  if (filter.eventTypes && filter.eventTypes.length > 0 && !filter.eventTypes.includes(event.kind)) return false;
  if (filter.namespaces && !filter.namespaces.includes(event.namespace)) return false;
  return true;
}

/** What a subscription needs from the bus. */
export interface EventSource {
  readonly db: Executor;
  /** Every event id at or below it is final and has been fanned out. */
  readonly cursor: number;
  /** Events read per replay page. */
  readonly pageSize: number;
  /** Resolves once the cursor is known to be final (the bus is initialized). */
  whenReady(): Promise<void>;
  /** Reads the log once now (coalesced with a read in progress). */
  refresh(): Promise<void>;
  /** Adds the subscription to the live fan-out. */
  attach(subscription: EventSubscription): void;
  /** Forgets the subscription (closed or failed). */
  unregister(subscription: EventSubscription): void;
}

/** Options of one subscription. */
export interface SubscriptionOptions {
  /** Replay every matching event with a greater id first; null/absent = live only. 0 = from the oldest stored. */
  readonly afterCursor?: number | null;
  /** Most live events held for a slow consumer. */
  readonly bufferSize: number;
  /** Closes the subscription when aborted. */
  readonly signal?: AbortSignal;
}

type Mode = 'starting' | 'replay' | 'live' | 'ended';

const DONE: IteratorReturnResult<undefined> = { value: undefined, done: true };

/** A stream of lifecycle events; iterate with `for await`, end with `close()` or `break`. */
export class EventSubscription implements AsyncIterableIterator<LifecycleEvent> {
  readonly filter: EventFilter;
  /**
   * Rejects when the subscription ends with an error (too slow, out of range, bus
   * stopped), so a consumer blocked on a slow write can give up at once.
   */
  readonly failure: Promise<never>;
  readonly #source: EventSource;
  readonly #bufferSize: number;
  readonly #startCursor: number | null;
  readonly #queue: LifecycleEvent[] = [];
  #mode: Mode = 'starting';
  /** Highest id queued or replayed through: nothing at or below it is queued again. */
  #after = 0;
  #error: Error | null = null;
  #wake: (() => void) | null = null;
  /** Id of the last event `next()` returned. */
  #delivered = 0;
  #starting: Promise<void> | null = null;
  #rejectFailure: (err: Error) => void = () => undefined;
  readonly #signalRef: AbortSignal | null;
  readonly #onAbort = (): void => this.close();

  constructor(source: EventSource, filter: EventFilter, options: SubscriptionOptions) {
    this.#source = source;
    this.filter = filter;
    this.#bufferSize = Math.max(1, options.bufferSize);
    this.#startCursor = options.afterCursor ?? null;
    this.failure = new Promise<never>((_, reject) => (this.#rejectFailure = reject));
    this.failure.catch(() => undefined);
    this.#signalRef = options.signal ?? null;
    if (this.#signalRef?.aborted) this.close();
    else this.#signalRef?.addEventListener('abort', this.#onAbort, { once: true });
  }

  /** True once closed or failed. */
  get ended(): boolean {
    return this.#mode === 'ended';
  }

  /** True while receiving live events (replay finished). */
  get live(): boolean {
    return this.#mode === 'live';
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /** The next event; throws the error the subscription ended with; done after `close()`. */
  async next(): Promise<IteratorResult<LifecycleEvent>> {
    for (;;) {
      if (this.#error) throw this.#error;
      const event = this.#queue.shift();
      if (event) {
        this.#delivered = event.id;
        return { value: event, done: false };
      }
      if (this.#mode === 'ended') return DONE;
      if (this.#mode === 'starting') await this.#startOnce();
      else if (this.#mode === 'replay') await this.#replayPage();
      else await new Promise<void>((resolve) => (this.#wake = resolve));
    }
  }

  /**
   * Starts the subscription now instead of at the first `next()`: resolves once it is
   * live (no start cursor) or replaying (the cursor was checked); throws what it failed with.
   */
  async ready(): Promise<void> {
    if (this.#mode === 'starting') await this.#startOnce();
    if (this.#error) throw this.#error;
  }

  /** Ends iteration early (`break` in `for await`). */
  return(): Promise<IteratorResult<LifecycleEvent>> {
    this.close();
    return Promise.resolve(DONE);
  }

  /** Ends the subscription; a pending `next()` completes (done). Idempotent. */
  close(): void {
    this.#end(null);
  }

  /** Ends the subscription with `error`: the next `next()` throws it and `failure` rejects. */
  fail(error: Error): void {
    this.#end(error);
  }

  /** Called by the bus for each live event, in id order. */
  offer(event: LifecycleEvent): void {
    if (this.#mode !== 'live' || event.id <= this.#after || !eventMatches(this.filter, event)) return;
    if (this.#queue.length >= this.#bufferSize) {
      this.fail(
        new ResourceExhaustedError(
          `the subscriber fell ${this.#bufferSize} events behind and was ended; resume from the last cursor received`,
          'SUBSCRIBER_TOO_SLOW',
          { buffered: this.#bufferSize, last_cursor: this.#delivered },
        ),
      );
      return;
    }
    this.#queue.push(event);
    this.#after = event.id;
    this.#signal();
  }

  #signal(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  #end(error: Error | null): void {
    if (this.#mode === 'ended') return;
    this.#mode = 'ended';
    this.#queue.length = 0;
    this.#signalRef?.removeEventListener('abort', this.#onAbort);
    if (error) {
      this.#error = error;
      this.#rejectFailure(error);
    }
    this.#source.unregister(this);
    this.#signal();
  }

  #startOnce(): Promise<void> {
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<void> {
    try {
      await this.#source.whenReady();
      if (this.#mode !== 'starting') return;
      if (this.#startCursor === null) {
        await this.#source.refresh();
        if (this.#mode !== 'starting') return;
        this.#after = this.#source.cursor;
        this.#goLive();
        return;
      }
      const oldest = await oldestEventId(this.#source.db);
      if (this.#mode !== 'starting') return;
      if (this.#startCursor > 0 && oldest !== null && this.#startCursor + 1 < oldest) {
        throw new OutOfRangeError(
          `events after cursor ${this.#startCursor} are no longer retained (the oldest is ${oldest}); ` +
            'start again without a cursor or from 0',
          'CURSOR_EXPIRED',
          { after_cursor: this.#startCursor, oldest_cursor: oldest },
        );
      }
      this.#after = this.#startCursor;
      this.#mode = 'replay';
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Reads the next page of history, or joins the live fan-out once caught up with the bus. */
  async #replayPage(): Promise<void> {
    const target = this.#source.cursor;
    if (this.#after >= target) {
      this.#goLive();
      return;
    }
    const pageSize = this.#source.pageSize;
    try {
      const events = await readEventRange(this.#source.db, { afterId: this.#after, throughId: target, limit: pageSize }, this.filter);
      if (this.#mode !== 'replay') return;
      this.#queue.push(...events);
      const last = events.at(-1);
      this.#after = events.length === pageSize && last ? last.id : target;
    } catch (err) {
      this.fail(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Synchronous: the bus's cursor cannot move between the check and the attach. */
  #goLive(): void {
    this.#mode = 'live';
    this.#source.attach(this);
  }
}
