/**
 * What wakes the dispatcher and delivers cancellations across instances:
 * - `LISTEN tasker_ready`: a transaction on any instance made steps claimable; the
 *   payload names their handlers ('' = any), so only sessions serving them are woken.
 *   Notifications of this instance's own group commits and task creations are
 *   skipped: the result processor and the task manager hand their ready steps to the
 *   dispatcher directly;
 * - `LISTEN tasker_cancel`: steps were cancelled while held by sessions that may be
 *   attached here (see `WorkerHub.deliverCancel`);
 * - a poll every `engine.poll_interval_ms` as the fallback for what no notification
 *   announces (retry backoffs elapsing, notifications lost while the LISTEN connection
 *   was down): ONE statement asks which of the handlers served here (by sessions with
 *   open credit) have claimable steps (`readyHandlers`), and only the sessions serving
 *   those are woken — idle sessions cost nothing per tick, however many are attached.
 *   The same tick ends streams that stopped sending heartbeats.
 */
import type { Logger } from 'pino';
import type { Clock } from '../domain/clock.js';
import { systemClock } from '../domain/clock.js';
import { FailedPreconditionError } from '../domain/errors.js';
import type { Database } from '../store/database.js';
import { READY_CHANNEL } from '../store/events.js';
import { readyHandlers } from '../store/steps.js';
import { withTransientRetry } from '../store/transient.js';
import type { Dispatcher } from './dispatcher.js';
import type { WorkerHub } from './worker-hub.js';
import { CANCEL_CHANNEL } from './worker-hub.js';

/** Options of {@link Wakeups}. */
export interface WakeupsOptions {
  readonly database: Database;
  readonly dispatcher: Dispatcher;
  readonly hub: WorkerHub;
  readonly logger: Logger;
  /** Default: the system clock. */
  readonly clock?: Clock;
  /** `engine.poll_interval_ms`. */
  readonly pollIntervalMs: number;
  /** A stream silent for longer than this is ended (`workers.lease_ms`: past it its leases are gone anyway). */
  readonly silenceMs: number;
  /**
   * `tasker_ready` notifications tagged with this origin are skipped: they come from
   * this instance's own group commits and task creations, whose ready steps the
   * dispatcher was handed directly (`Dispatcher.dispatchCommitted`).
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
  /** The poll in flight: a tick while it runs is skipped. */
  #polling: Promise<void> | null = null;

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
    this.#timer = setInterval(() => void this.tick(), this.#o.pollIntervalMs);
    this.#timer.unref();
  }

  /** One poll: ends silent streams, then wakes the sessions serving handlers with claimable steps. */
  tick(): Promise<void> {
    const silent = this.#o.hub.endSilent(
      this.#o.silenceMs,
      new FailedPreconditionError('no heartbeat within the lease; reconnect with the session handle', 'HEARTBEAT_MISSED'),
    );
    if (silent.length > 0) this.#o.logger.warn({ sessions: silent.map((s) => s.id) }, 'ended streams that stopped sending heartbeats');
    this.#polling ??= this.#poll().finally(() => {
      this.#polling = null;
    });
    return this.#polling;
  }

  async #poll(): Promise<void> {
    const handlers = [...this.#o.hub.openHandlers()];
    if (handlers.length === 0) return;
    const { logger } = this.#o;
    const now = (this.#o.clock ?? systemClock).now();
    try {
      const ready = await withTransientRetry(() => readyHandlers(this.#o.database.db, handlers, now), { logger });
      if (ready.length > 0) this.#o.dispatcher.wake(ready);
    } catch (err) {
      logger.warn({ err }, 'polling for ready steps failed; trying again on the next tick');
    }
  }

  /** Stops polling and unsubscribes. */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#polling;
    const unlisten = this.#unlisten.splice(0);
    await Promise.all(unlisten.map((u) => u().catch((err: unknown) => this.#o.logger.debug({ err }, 'unlisten failed'))));
  }
}
