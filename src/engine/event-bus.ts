/**
 * The event bus: one reader of the event log (`tasker_events`) per instance, fanning
 * new events out to this instance's subscribers (WatchTask, SubscribeEvents).
 *
 * Wake-ups: one `LISTEN tasker_events` per instance (every engine transaction that
 * appends events notifies the highest id at commit, from any instance), with a poll
 * every `pollIntervalMs` as the fallback for lost notifications. A commit on this
 * instance can also `poke` the bus as soon as it returns, without waiting for its own
 * notification to come back. The bus reads only while someone is subscribed; the
 * first subscriber after an idle period starts it.
 *
 * Results: the results of steps completed by this instance's commits are kept for a
 * while (`rememberResults`, the most recent `resultMemory`), so that watchers turning
 * a completion into a result update need not read it back (`knownResult`). A complete
 * step never changes again, so a remembered result is the stored one.
 *
 * The cursor: every event id at or below `cursor` is *final* — committed and already
 * fanned out, or never going to exist — so subscribers can replay up to it from the
 * table and join the live fan-out without a gap. Ids are taken at insert but visible
 * at commit, so reading "everything after the cursor" can see id 20 before id 15. The
 * bus reads the rows after its cursor together with the statement's snapshot and
 * advances through a missing id only when it is final:
 *   - every id at or below the highest id visible in a snapshot S was taken before S,
 *     by a transaction that had already written (`store/event-log.ts`), so by one that
 *     committed (its row is visible), rolled back, or was running in S;
 *   - so a missing id is final when S lists no running transaction, or once every
 *     transaction running in S has finished (checked against a later snapshot, whose
 *     rows then include whatever those transactions committed).
 * While it waits (usually milliseconds) the bus re-reads every `gapRecheckMs`.
 */
import type { Logger } from 'pino';
import type { LifecycleEvent } from '../domain/events.js';
import { UnavailableError } from '../domain/errors.js';
import type { Database } from '../store/database.js';
import { readEventHead, readEventsAfter } from '../store/event-log.js';
import type { SnapshotInfo } from '../store/event-log.js';
import { EVENTS_CHANNEL } from '../store/events.js';
import type { Executor } from '../store/sql-helpers.js';
import type { EventFilter, EventSource } from './event-subscription.js';
import { EventSubscription } from './event-subscription.js';

/** Options of {@link EventBus}. */
export interface EventBusOptions {
  readonly database: Database;
  readonly logger: Logger;
  /** Fallback read interval while subscribed (`engine.poll_interval_ms`). */
  readonly pollIntervalMs: number;
  /** Events read per query (log reads and replay pages). Default 500. */
  readonly pageSize?: number;
  /** Live events held per subscriber before it is ended as too slow. Default 1000. */
  readonly bufferSize?: number;
  /** Re-read interval while waiting for running transactions to finish. Default 20 ms. */
  readonly gapRecheckMs?: number;
  /**
   * Longest wait for the transactions running when a missing id was seen. Past it the
   * id is treated as final (with a warning), so one long unrelated write transaction
   * cannot hold every subscriber back indefinitely. Engine transactions are a few
   * statements bounded by `database.statement_timeout_ms` (30 s by default). Default 60 s.
   */
  readonly maxGapWaitMs?: number;
  /** Results of steps completed here kept for watchers (`rememberResults`). Default 1000. */
  readonly resultMemory?: number;
}

/** Options of {@link EventBus.subscribe}. */
export interface SubscribeOptions {
  /** Replay matching events with a greater id first (0 = from the oldest stored); null/absent = live only. */
  readonly afterCursor?: number | null;
  /** Closes the subscription when aborted (client cancel, shutdown). */
  readonly signal?: AbortSignal;
}

type BusState = 'idle' | 'initializing' | 'waiting' | 'ready';

/** Running transactions we wait on, and the ids they may hold (at or below `through`). */
interface PendingWait {
  readonly running: ReadonlySet<string>;
  readonly through: number;
  /** performance.now() when the wait began. */
  readonly since: number;
}

function allFinished(wait: PendingWait, now: SnapshotInfo): boolean {
  for (const xid of wait.running) if (now.running.has(xid)) return false;
  return true;
}

/** Reads the event log and fans events out; a component (`start`/`stop`). */
export class EventBus implements EventSource {
  readonly db: Executor;
  readonly pageSize: number;
  readonly #o: EventBusOptions;
  readonly #bufferSize: number;
  readonly #subscriptions = new Set<EventSubscription>();
  readonly #liveAll = new Set<EventSubscription>();
  readonly #liveByTask = new Map<string, Set<EventSubscription>>();
  #state: BusState = 'idle';
  /** Bumped on every idle transition so a read that started before it is discarded. */
  #generation = 0;
  #cursor = 0;
  /** Every id at or below it is final. */
  #finalThrough = 0;
  #initWait: PendingWait | null = null;
  #gap: PendingWait | null = null;
  #readyWaiters: Array<() => void> = [];
  #reading: Promise<void> | null = null;
  #readAgain = false;
  #timer: NodeJS.Timeout | null = null;
  #recheck: NodeJS.Timeout | null = null;
  #unlisten: (() => Promise<void>) | null = null;
  #stopped = false;
  /** Step id → result JSON text of recent completions committed here, oldest first. */
  readonly #results = new Map<string, string>();
  readonly #resultMemory: number;

  constructor(options: EventBusOptions) {
    this.#o = options;
    this.db = options.database.db;
    this.pageSize = Math.max(1, options.pageSize ?? 500);
    this.#bufferSize = Math.max(1, options.bufferSize ?? 1000);
    this.#resultMemory = Math.max(0, options.resultMemory ?? 1000);
  }

  /** Every event id at or below it is final and has been fanned out. */
  get cursor(): number {
    return this.#cursor;
  }

  /** Open subscriptions. */
  get subscriberCount(): number {
    return this.#subscriptions.size;
  }

  /** LISTENs for `tasker_events` notifications. */
  async start(): Promise<void> {
    this.#stopped = false;
    this.#unlisten = await this.#o.database.listen(EVENTS_CHANNEL, (payload) => this.#onNotify(payload));
  }

  /** Ends every subscription with UNAVAILABLE (SERVER_SHUTTING_DOWN), stops reading and unlistens. */
  async stop(): Promise<void> {
    this.#stopped = true;
    const shutting = new UnavailableError('server is shutting down; resume from the last cursor received', 'SERVER_SHUTTING_DOWN');
    for (const subscription of [...this.#subscriptions]) subscription.fail(shutting);
    this.#goIdle();
    const unlisten = this.#unlisten;
    this.#unlisten = null;
    await unlisten?.().catch((err: unknown) => this.#o.logger.debug({ err }, 'unlisten failed'));
    await this.#reading?.catch(() => undefined);
  }

  /** A new subscription (see `EventSubscription`); starts the bus if it was idle. */
  subscribe(filter: EventFilter, options: SubscribeOptions = {}): EventSubscription {
    const subscription = new EventSubscription(this, filter, {
      afterCursor: options.afterCursor ?? null,
      bufferSize: this.#bufferSize,
      signal: options.signal,
    });
    if (this.#stopped) {
      subscription.fail(new UnavailableError('server is shutting down', 'SERVER_SHUTTING_DOWN'));
      return subscription;
    }
    if (subscription.ended) return subscription;
    this.#subscriptions.add(subscription);
    if (this.#state === 'idle') this.#activate();
    return subscription;
  }

  /** Resolves once the cursor is final (the bus has started and finished its initial wait). */
  whenReady(): Promise<void> {
    if (this.#state === 'ready') return Promise.resolve();
    if (this.#stopped) return Promise.reject(new UnavailableError('server is shutting down', 'SERVER_SHUTTING_DOWN'));
    return new Promise<void>((resolve) => this.#readyWaiters.push(resolve));
  }

  /**
   * A transaction of this instance that appended events has committed: read now (as
   * its notification would make the bus do, without waiting for it). Idle: nothing.
   */
  poke(): void {
    if (this.#state !== 'idle') this.#kick();
  }

  /**
   * Remembers results of steps just completed by a commit of this instance (JSON text
   * as stored), for {@link knownResult}; only while someone is subscribed.
   */
  rememberResults(results: Iterable<{ readonly stepId: string; readonly resultJson: string }>): void {
    if (this.#state === 'idle' || this.#resultMemory === 0) return;
    for (const { stepId, resultJson } of results) {
      this.#results.delete(stepId);
      this.#results.set(stepId, resultJson);
    }
    for (const oldest of this.#results.keys()) {
      if (this.#results.size <= this.#resultMemory) break;
      this.#results.delete(oldest);
    }
  }

  /** The result of a complete step if a commit of this instance produced it recently (see `rememberResults`). */
  knownResult(stepId: string): { readonly value: unknown } | null {
    const json = this.#results.get(stepId);
    return json === undefined ? null : { value: JSON.parse(json) as unknown };
  }

  /** Reads the log now; resolves after a read that started after this call. */
  async refresh(): Promise<void> {
    if (this.#state === 'idle') return;
    // A running read loops once more when asked, so awaiting it covers a read started after this call.
    if (this.#reading) this.#readAgain = true;
    else this.#kick();
    await this.#reading?.catch(() => undefined);
  }

  /** Adds a caught-up subscription to the live fan-out. */
  attach(subscription: EventSubscription): void {
    if (!this.#subscriptions.has(subscription)) return;
    const taskId = subscription.filter.taskId;
    if (!taskId) {
      this.#liveAll.add(subscription);
      return;
    }
    let set = this.#liveByTask.get(taskId);
    if (!set) this.#liveByTask.set(taskId, (set = new Set()));
    set.add(subscription);
  }

  /** Forgets a subscription; the last one leaving makes the bus idle. */
  unregister(subscription: EventSubscription): void {
    if (!this.#subscriptions.delete(subscription)) return;
    this.#liveAll.delete(subscription);
    const taskId = subscription.filter.taskId;
    const set = taskId ? this.#liveByTask.get(taskId) : undefined;
    if (taskId && set) {
      set.delete(subscription);
      if (set.size === 0) this.#liveByTask.delete(taskId);
    }
    if (this.#subscriptions.size === 0) this.#goIdle();
  }

  #activate(): void {
    this.#state = 'initializing';
    this.#timer = setInterval(() => this.#kick(), this.#o.pollIntervalMs);
    this.#timer.unref();
    this.#kick();
  }

  #goIdle(): void {
    this.#generation += 1;
    this.#state = 'idle';
    this.#initWait = null;
    this.#gap = null;
    if (this.#timer) clearInterval(this.#timer);
    if (this.#recheck) clearTimeout(this.#recheck);
    this.#timer = null;
    this.#recheck = null;
    this.#results.clear();
    // Only closed subscriptions can be waiting: let their start-up finish (it sees them ended).
    for (const resolve of this.#readyWaiters.splice(0)) resolve();
  }

  #onNotify(payload: string): void {
    if (this.#state === 'idle') return;
    const id = Number(payload);
    if (!Number.isFinite(id) || id > this.#cursor || this.#gap || this.#initWait) this.#kick();
  }

  /** Starts a read, or asks the running one to read again when it ends. */
  #kick(): void {
    if (this.#state === 'idle' || this.#stopped) return;
    if (this.#reading) {
      this.#readAgain = true;
      return;
    }
    this.#reading = this.#readLoop().finally(() => {
      this.#reading = null;
      // A kick that arrived while a discarded read (from before an idle period) was ending.
      if (this.#readAgain) this.#kick();
    });
  }

  async #readLoop(): Promise<void> {
    const generation = this.#generation;
    let more = true;
    while (more && generation === this.#generation && !this.#stopped) {
      this.#readAgain = false;
      try {
        more = (await this.#readOnce(generation)) || this.#readAgain;
      } catch (err) {
        if (!this.#stopped) this.#o.logger.warn({ err }, 'reading the event log failed; retrying on the next poll');
        more = false;
      }
    }
    if (generation === this.#generation && (this.#gap || this.#initWait)) this.#scheduleRecheck();
  }

  #scheduleRecheck(): void {
    if (this.#recheck) return;
    this.#recheck = setTimeout(() => {
      this.#recheck = null;
      this.#kick();
    }, this.#o.gapRecheckMs ?? 20);
    this.#recheck.unref();
  }

  /** One read; returns true when a full page came back (read again at once). */
  async #readOnce(generation: number): Promise<boolean> {
    if (this.#state === 'initializing') {
      const head = await readEventHead(this.db);
      if (generation !== this.#generation) return false;
      this.#cursor = head.maxId;
      this.#initWait = { running: head.snapshot.running, through: head.maxId, since: performance.now() };
      this.#state = 'waiting';
    }
    const { events, snapshot } = await readEventsAfter(this.db, this.#cursor, this.pageSize);
    if (generation !== this.#generation) return false;
    if (this.#initWait && this.#settled(this.#initWait, snapshot)) {
      this.#finalThrough = Math.max(this.#finalThrough, this.#initWait.through);
      this.#initWait = null;
    }
    if (this.#gap && this.#settled(this.#gap, snapshot)) {
      this.#finalThrough = Math.max(this.#finalThrough, this.#gap.through);
      this.#gap = null;
    }
    const delivered = this.#advance(events, snapshot);
    if (this.#state === 'waiting' && !this.#initWait) this.#becomeReady();
    for (const event of delivered) this.#fanOut(event);
    return events.length === this.pageSize && delivered.length === events.length;
  }

  /** Moves the cursor through `events` while every id skipped on the way is final (see the file comment). */
  #advance(events: readonly LifecycleEvent[], snapshot: SnapshotInfo): LifecycleEvent[] {
    const delivered: LifecycleEvent[] = [];
    const highest = events.at(-1)?.id ?? this.#cursor;
    for (const event of events) {
      const skipsIds = event.id > this.#cursor + 1 && event.id - 1 > this.#finalThrough;
      if (skipsIds && snapshot.running.size > 0) {
        this.#gap ??= { running: snapshot.running, through: highest, since: performance.now() };
        break;
      }
      this.#cursor = event.id;
      delivered.push(event);
    }
    return delivered;
  }

  /** Whether the ids a wait covers are final: its transactions finished, or it lasted too long. */
  #settled(wait: PendingWait, now: SnapshotInfo): boolean {
    if (allFinished(wait, now)) return true;
    const waitedMs = performance.now() - wait.since;
    if (waitedMs < (this.#o.maxGapWaitMs ?? 60_000)) return false;
    this.#o.logger.warn(
      { through: wait.through, waitedMs: Math.round(waitedMs), running: [...wait.running].filter((x) => now.running.has(x)) },
      'event ids below the cursor stayed missing while long transactions ran; treating them as final',
    );
    return true;
  }

  #becomeReady(): void {
    this.#state = 'ready';
    const waiters = this.#readyWaiters.splice(0);
    for (const resolve of waiters) resolve();
  }

  #fanOut(event: LifecycleEvent): void {
    for (const subscription of this.#liveAll) subscription.offer(event);
    const byTask = this.#liveByTask.get(event.taskId);
    if (byTask) for (const subscription of byTask) subscription.offer(event);
  }
}
