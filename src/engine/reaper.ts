/**
 * The reaper: the timers that live in the database. Each tick
 * 1. expires worker sessions past `expires_at` (state `expired`), and marks sessions
 *    silent for longer than `silenceMs` disconnected (their instance is gone; their
 *    workers may resume elsewhere until the session expires);
 * 2. fails attempts past their timeout deadline through the retry policy
 *    (`step.timed_out`; backoff as for a worker failure);
 * 3. takes back leases that ran out or belong to an expired session: the attempt
 *    counts, and the step is claimable again at once (`waiting_for_retry`,
 *    `ready_at = now`) or in `error` when no attempts remain (`step.lease_expired`).
 * Every sweep locks its rows with SKIP LOCKED, so any number of instances can run a
 * reaper at the same time; each change is a compare-and-swap, so a worker report
 * racing the reaper is applied once or refused, never both.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Clock } from '../domain/clock.js';
import { notifyEffects, TxEffects } from '../store/events.js';
import { detachSilentSessions, expireSessions, lockExpiredLeases, lockTimedOutSteps } from '../store/leases.js';
import type { DB } from '../store/schema.js';
import { applyStepChanges } from '../store/step-changes.js';
import type { LockedStep } from '../store/steps.js';
import { settleTasks } from '../store/task-changes.js';
import { withTransientRetry } from '../store/transient.js';
import { decideLeaseLoss, decideStepFailure, failureChange } from './failures.js';
import type { FailureDecision, StepFailure } from './failures.js';

/** Options of {@link Reaper}. */
export interface ReaperOptions {
  readonly db: Kysely<DB>;
  readonly clock: Clock;
  /** Time between ticks when started. Default 1000 ms. */
  readonly intervalMs?: number;
  /** Rows per sweep transaction. Default 500. */
  readonly batchSize?: number;
  /** Sweep transactions per kind per tick, so one tick cannot run forever. Default 20. */
  readonly maxBatchesPerTick?: number;
  /**
   * A session recorded as connected whose last heartbeat is older than this is marked
   * disconnected. Give it well above the heartbeat interval and the silence after
   * which an instance ends a stream itself. Default: never.
   */
  readonly silenceMs?: number;
  /** Jitter source for timeout backoff. Default Math.random. */
  readonly random?: () => number;
  readonly logger?: Logger;
}

/** What one {@link Reaper.tick} did. */
export interface ReaperTickResult {
  readonly expiredSessions: readonly string[];
  /** Sessions marked disconnected because their instance went silent. */
  readonly detachedSessions: readonly string[];
  /** Attempts failed by their timeout. */
  readonly timedOut: number;
  /** Leases taken back (ran out, or held by an expired session). */
  readonly expiredLeases: number;
}

const LEASE_LOST: StepFailure = {
  errorClass: 'LeaseExpired',
  message: 'the worker holding this attempt stopped renewing its lease',
  retryable: true,
};

function timeoutFailure(step: LockedStep): StepFailure {
  return {
    errorClass: 'StepTimeout',
    message: `attempt ${step.attempts} of step ${step.name} exceeded its timeout`,
    retryable: true,
  };
}

/** Expires sessions, leases and timeouts on a timer; see the file comment. */
export class Reaper {
  readonly #db: Kysely<DB>;
  readonly #clock: Clock;
  readonly #intervalMs: number;
  readonly #batchSize: number;
  readonly #maxBatches: number;
  readonly #random: () => number;
  readonly #silenceMs: number | null;
  readonly #logger: Logger | undefined;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<unknown> | null = null;
  #started = false;

  constructor(options: ReaperOptions) {
    this.#db = options.db;
    this.#clock = options.clock;
    this.#intervalMs = options.intervalMs ?? 1000;
    this.#batchSize = options.batchSize ?? 500;
    this.#maxBatches = options.maxBatchesPerTick ?? 20;
    this.#random = options.random ?? Math.random;
    this.#silenceMs = options.silenceMs ?? null;
    this.#logger = options.logger;
  }

  /** Starts ticking every `intervalMs`. Idempotent. */
  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#schedule();
  }

  /** Stops ticking and waits for a tick in progress. */
  async stop(): Promise<void> {
    this.#started = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running?.catch(() => undefined);
  }

  /** Runs one pass at `now` (default: the clock's time). */
  async tick(now: Date = this.#clock.now()): Promise<ReaperTickResult> {
    const expiredSessions = await withTransientRetry(() => expireSessions(this.#db, now, this.#batchSize), {
      logger: this.#logger,
    });
    const silence = this.#silenceMs;
    const detachedSessions =
      silence === null
        ? []
        : await withTransientRetry(() => detachSilentSessions(this.#db, new Date(now.getTime() - silence), now, this.#batchSize), {
            logger: this.#logger,
          });
    const timedOut = await this.#sweep(now, (trx) => lockTimedOutSteps(trx, now, this.#batchSize), (step) => {
      const failure = timeoutFailure(step);
      return { failure, decision: decideStepFailure(step, failure, now, this.#random), origin: 'timeout' as const };
    });
    const expiredLeases = await this.#sweep(
      now,
      (trx) => lockExpiredLeases(trx, now, this.#batchSize, expiredSessions),
      (step) => ({ failure: LEASE_LOST, decision: decideLeaseLoss(step, now), origin: 'lease_expired' as const }),
    );
    if (expiredSessions.length + detachedSessions.length + timedOut + expiredLeases > 0) {
      this.#logger?.info(
        { expiredSessions: expiredSessions.length, detachedSessions: detachedSessions.length, timedOut, expiredLeases },
        'reaper tick',
      );
    }
    return { expiredSessions, detachedSessions, timedOut, expiredLeases };
  }

  /** Locks a batch, fails each step as decided, settles the tasks; repeats while batches come back full. */
  async #sweep(
    now: Date,
    lock: (trx: Kysely<DB>) => Promise<LockedStep[]>,
    decide: (step: LockedStep) => { failure: StepFailure; decision: FailureDecision; origin: 'timeout' | 'lease_expired' },
  ): Promise<number> {
    let total = 0;
    for (let i = 0; i < this.#maxBatches; i++) {
      const { found, moved } = await withTransientRetry(
        () =>
          this.#db.transaction().execute(async (trx) => {
            const steps = await lock(trx);
            const changes = steps.map((step) => {
              const { failure, decision, origin } = decide(step);
              return failureChange(step, step.state, decision, failure, origin, step.attempts);
            });
            const result = await applyStepChanges(trx, changes, now);
            const settled = await settleTasks(trx, result.tasks, now, 'settle');
            const effects = new TxEffects();
            effects.addEvent(result.maxEventId);
            effects.addEvent(settled.maxEventId);
            effects.addReady(result.readyHandlers);
            await notifyEffects(trx, effects);
            return { found: steps.length, moved: result.movedIds.size };
          }),
        { logger: this.#logger },
      );
      total += moved;
      if (found < this.#batchSize) break;
    }
    return total;
  }

  #schedule(): void {
    if (!this.#started) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      const run = this.tick()
        .catch((err: unknown) => this.#logger?.error({ err }, 'reaper tick failed'))
        .finally(() => {
          this.#running = null;
          this.#schedule();
        });
      this.#running = run;
    }, this.#intervalMs);
    this.#timer.unref();
  }
}
