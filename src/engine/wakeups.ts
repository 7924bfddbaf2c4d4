/**
 * What wakes the dispatcher and delivers cancellations across instances:
 * - `LISTEN tasker_ready`: a transaction on any instance made steps claimable; the
 *   payload names their handlers ('' = any), so only sessions serving them are woken.
 *   Notifications of this instance's own group commits are skipped: the result
 *   processor hands their ready steps to the dispatcher directly;
 * - `LISTEN tasker_cancel`: steps were cancelled while held by sessions that may be
 *   attached here (see `WorkerHub.deliverCancel`);
 * - a poll every `engine.poll_interval_ms` as the fallback for what no notification
 *   announces (retry backoffs elapsing, notifications lost while the LISTEN connection
 *   was down); the same tick ends streams that stopped sending heartbeats.
 */
import type { Logger } from 'pino';
import { FailedPreconditionError } from '../domain/errors.js';
import type { Database } from '../store/database.js';
import { READY_CHANNEL } from '../store/events.js';
import type { Dispatcher } from './dispatcher.js';
import type { WorkerHub } from './worker-hub.js';
import { CANCEL_CHANNEL } from './worker-hub.js';

/** Options of {@link Wakeups}. */
export interface WakeupsOptions {
  readonly database: Database;
  readonly dispatcher: Dispatcher;
  readonly hub: WorkerHub;
  readonly logger: Logger;
  /** `engine.poll_interval_ms`. */
  readonly pollIntervalMs: number;
  /** A stream silent for longer than this is ended (`workers.lease_ms`: past it its leases are gone anyway). */
  readonly silenceMs: number;
  /**
   * `tasker_ready` notifications tagged with this origin are skipped: they come from
   * this instance's own group commits, whose ready steps the dispatcher was handed
   * directly (`Dispatcher.dispatchCommitted`).
   */
  readonly ignoreOrigin?: string | null;
}

/** A parsed `tasker_ready` payload. */
export interface ReadyNotification {
  /** The sender's origin tag, or null. */
  readonly origin: string | null;
  /** Handlers with newly claimable steps; null means every handler. */
  readonly handlers: string[] | null;
}

/** Parses a `tasker_ready` payload (`[<origin> ]h1,h2,...`; see `READY_CHANNEL`). */
export function parseReadyNotification(payload: string): ReadyNotification {
  const space = payload.indexOf(' ');
  const origin = space >= 0 ? payload.slice(0, space) : null;
  const list = space >= 0 ? payload.slice(space + 1) : payload;
  const handlers = list
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h.length > 0);
  return { origin: origin || null, handlers: handlers.length > 0 ? handlers : null };
}

/** Parses a `tasker_ready` payload: the handlers, null meaning every handler. */
export function parseReadyPayload(payload: string): string[] | null {
  return parseReadyNotification(payload).handlers;
}

/** LISTEN subscriptions and the poll timer; a component. */
export class Wakeups {
  readonly #o: WakeupsOptions;
  readonly #unlisten: Array<() => Promise<void>> = [];
  #timer: NodeJS.Timeout | null = null;

  constructor(options: WakeupsOptions) {
    this.#o = options;
  }

  /** Subscribes to both channels and starts polling. */
  async start(): Promise<void> {
    const { database, dispatcher, hub } = this.#o;
    const ignore = this.#o.ignoreOrigin ?? null;
    this.#unlisten.push(
      await database.listen(READY_CHANNEL, (payload) => {
        const ready = parseReadyNotification(payload);
        if (ignore === null || ready.origin !== ignore) dispatcher.wake(ready.handlers);
      }),
    );
    this.#unlisten.push(await database.listen(CANCEL_CHANNEL, (payload) => hub.handleCancelNotification(payload)));
    this.#timer = setInterval(() => this.tick(), this.#o.pollIntervalMs);
    this.#timer.unref();
  }

  /** One poll: ends silent streams, then wakes every session. */
  tick(): void {
    const silent = this.#o.hub.endSilent(
      this.#o.silenceMs,
      new FailedPreconditionError('no heartbeat within the lease; reconnect with the session handle', 'HEARTBEAT_MISSED'),
    );
    if (silent.length > 0) this.#o.logger.warn({ sessions: silent.map((s) => s.id) }, 'ended streams that stopped sending heartbeats');
    this.#o.dispatcher.wake(null);
  }

  /** Stops polling and unsubscribes. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    const unlisten = this.#unlisten.splice(0);
    await Promise.all(unlisten.map((u) => u().catch((err: unknown) => this.#o.logger.debug({ err }, 'unlisten failed'))));
  }
}
