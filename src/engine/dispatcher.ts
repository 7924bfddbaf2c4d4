/**
 * The dispatcher: hands ready steps to the sessions attached to this instance.
 *
 * A session is *wanted* when something may be ready for it: it just attached, a
 * commit here released its credit or made steps of its handlers (and namespaces)
 * ready, a `tasker_ready` notification from another instance named one of its
 * handlers, the poll timer fired, or its last claim came back full. Claims only take
 * steps of the namespaces the session serves. Wanted sessions are served
 * round-robin, at most `maxConcurrentClaims` claims at a time and at most one per
 * session; each claim is one transaction (`claimSteps`) taking up to
 * min(open credit, `dispatchBatchSize`) steps and at most `maxBatchBytes` of
 * assignments, sent as one StepBatch; a claim cut short by either limit is followed
 * by another.
 *
 * Wake-ups coalesce: waking a session that is claiming marks it to claim again
 * afterwards; waking one without open credit marks it *starved*, and it is served as
 * soon as a commit or a cancel releases some of its steps. A session whose stream
 * buffer is full is not claimed for until the stream drains.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Clock } from '../domain/clock.js';
import type { DB } from '../store/schema.js';
import { abandonLeases } from '../store/sessions.js';
import { withTransientRetry } from '../store/transient.js';
import { claimSteps } from './claims.js';
import type { AttachedSession } from './attached-session.js';
import type { ReadyWork } from './outcomes.js';
import type { CommittedGroup } from './result-processor.js';
import type { WorkerHub } from './worker-hub.js';

/** True when `session` serves the handler of `work` in its namespace (no namespaces = all). */
function servesWork(session: AttachedSession, work: ReadyWork): boolean {
  return session.handlers.has(work.handler) && (session.namespaces.length === 0 || session.namespaces.includes(work.namespace));
}

/** Options of {@link Dispatcher}. */
export interface DispatcherOptions {
  readonly db: Kysely<DB>;
  readonly hub: WorkerHub;
  readonly clock: Clock;
  readonly logger: Logger;
  /** `workers.lease_ms`: the lease each claimed step gets. */
  readonly leaseMs: number;
  /** `engine.dispatch_batch_size`: most steps per StepBatch. */
  readonly dispatchBatchSize: number;
  /** `workers.max_batch_bytes`: most bytes of assignments per StepBatch. Absent: no limit. */
  readonly maxBatchBytes?: number;
  /** Claims running at once across all sessions. Default 4. */
  readonly maxConcurrentClaims?: number;
}

/** Sends ready steps to attached sessions; see the file comment. */
export class Dispatcher {
  readonly #o: DispatcherOptions;
  readonly #maxClaims: number;
  /** Sessions to claim for, in service order (a Set keeps insertion order: round-robin). */
  readonly #wanted = new Set<AttachedSession>();
  /** Woken while a claim for them was running: claim again when it ends. */
  readonly #again = new Set<AttachedSession>();
  /** Woken without open credit: claim when credit opens. */
  readonly #starved = new Set<AttachedSession>();
  /** Stream buffer full: claim when it drains. */
  readonly #blocked = new Set<AttachedSession>();
  readonly #claims = new Set<Promise<void>>();
  #active = 0;
  #started = false;

  constructor(options: DispatcherOptions) {
    this.#o = options;
    this.#maxClaims = Math.max(1, options.maxConcurrentClaims ?? 4);
    options.hub.onCreditOpened((session) => {
      if (this.#starved.delete(session)) this.wakeSession(session);
    });
    options.hub.onDetached((session) => this.#forget(session));
  }

  /** Claims running now. */
  get activeClaims(): number {
    return this.#active;
  }

  /** Starts serving wake-ups and serves every attached session once. */
  start(): void {
    this.#started = true;
    this.wake(null);
  }

  /** Stops claiming and waits for claims in flight (their batches are still sent). */
  async stop(): Promise<void> {
    this.#started = false;
    this.#wanted.clear();
    this.#again.clear();
    this.#starved.clear();
    while (this.#claims.size > 0) await Promise.allSettled([...this.#claims]);
  }

  /** Wakes the attached sessions serving any of `handlers`, or every session when null. */
  wake(handlers: Iterable<string> | null): void {
    const wanted = handlers === null ? null : [...handlers];
    for (const session of this.#o.hub.sessions()) {
      if (wanted === null || wanted.some((h) => session.handlers.has(h))) this.#want(session);
    }
    this.#pump();
  }

  /**
   * After a commit on this instance (a group of reports, a task created): wakes the
   * attached sessions serving a handler (in a namespace they serve) that got claimable
   * steps — at once, not after the `tasker_ready` round trip — and the sessions whose
   * credit opened if they were starved. A session whose credit opened without being
   * starved has nothing waiting for it (its last claim came back short of its credit,
   * and whatever became ready since woke it or will), so it is not claimed for.
   */
  dispatchCommitted(committed: CommittedGroup): void {
    for (const session of committed.opened) if (this.#starved.delete(session)) this.#want(session);
    if (committed.ready.length > 0) {
      for (const session of this.#o.hub.sessions()) {
        if (committed.ready.some((r) => servesWork(session, r))) this.#want(session);
      }
    }
    this.#pump();
  }

  /** Wakes one session (attached, credit raised, more may be ready). */
  wakeSession(session: AttachedSession): void {
    this.#want(session);
    this.#pump();
  }

  #want(session: AttachedSession): void {
    if (!this.#started || !session.accepting) return;
    if (session.openCredit === 0) this.#starved.add(session);
    else if (session.claiming || this.#blocked.has(session)) this.#again.add(session);
    else this.#wanted.add(session);
  }

  #forget(session: AttachedSession): void {
    this.#wanted.delete(session);
    this.#again.delete(session);
    this.#starved.delete(session);
    this.#blocked.delete(session);
  }

  #pump(): void {
    if (!this.#started) return;
    for (const session of this.#wanted) {
      if (this.#active >= this.#maxClaims) return;
      this.#wanted.delete(session);
      if (!session.accepting) continue;
      if (session.openCredit === 0) {
        this.#starved.add(session);
        continue;
      }
      const claim = this.#claim(session).finally(() => this.#claims.delete(claim));
      this.#claims.add(claim);
    }
  }

  async #claim(session: AttachedSession): Promise<void> {
    session.claiming = true;
    this.#active += 1;
    const limit = Math.min(session.openCredit, this.#o.dispatchBatchSize);
    let full = false;
    const startedAt = performance.now();
    try {
      const now = this.#o.clock.now();
      const batch = await claimSteps(this.#o.db, {
        sessionId: session.id,
        handlers: session.handlerList,
        namespaces: session.namespaces,
        limit,
        ...(this.#o.maxBatchBytes !== undefined ? { maxBatchBytes: this.#o.maxBatchBytes } : {}),
        leaseMs: this.#o.leaseMs,
        now,
        logger: this.#o.logger,
      });
      const refs = batch.assignments.map((a) => ({ stepId: a.stepId, attempt: a.attempt }));
      full = refs.length === limit || (batch.leftByBudget ?? 0) > 0 || (batch.oversized?.length ?? 0) > 0;
      if (refs.length > 0 && (session.detached || !session.channel.open)) {
        // The stream ended while claiming: the worker never sees these, so release them now.
        full = false;
        await withTransientRetry(() => abandonLeases(this.#o.db, session.id, refs, this.#o.clock.now()), {
          logger: this.#o.logger,
        });
        this.#o.logger.debug({ sessionId: session.id, steps: refs.length }, 'stream ended during a claim; leases released');
      } else if (refs.length > 0) {
        session.hold(refs);
        if (!session.channel.sendBatch(batch)) this.#waitWritable(session);
      }
      this.#o.logger.debug({ sessionId: session.id, limit, claimed: refs.length, ms: Math.round(performance.now() - startedAt) }, 'claimed');
    } catch (err) {
      this.#o.logger.error({ err, sessionId: session.id }, 'claiming steps failed; retrying on the next wake-up');
    } finally {
      session.claiming = false;
      this.#active -= 1;
      if (full || this.#again.delete(session)) this.#want(session);
      this.#pump();
    }
  }

  #waitWritable(session: AttachedSession): void {
    this.#blocked.add(session);
    void session.channel.whenWritable().then(() => {
      if (!this.#blocked.delete(session)) return;
      if (this.#again.delete(session)) this.wakeSession(session);
    });
  }
}
