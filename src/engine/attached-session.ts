/**
 * One worker session whose stream is attached to this instance, as the engine sees
 * it in memory: handlers, credit, whether it drains, and the step attempts it holds.
 *
 * Held steps are tracked as a set of (step, attempt), not a counter: releasing the
 * same attempt twice (a resent completion acked DUPLICATE, a cancel racing a
 * completion) is then harmless, and credit can never drift. The set is seeded from
 * the database at attach time and reconciled with it on every heartbeat.
 */
import type { LeasedStepRef, SessionRecord } from '../store/sessions.js';
import type { SessionChannel } from './worker-hub.js';

interface Held {
  readonly attempt: number;
  readonly generation: number;
}

/** One session whose stream is attached here. Mutated only on the event loop, never concurrently. */
export class AttachedSession {
  readonly id: string;
  readonly channel: SessionChannel;
  handlers: ReadonlySet<string>;
  handlerList: readonly string[];
  namespaces: readonly string[];
  /** Hello.max_in_flight, then the latest Credit. */
  credit: number;
  /** The worker sent Drain: no new steps. */
  workerDraining = false;
  /** This instance is shutting down: no new steps. */
  serverDraining = false;
  /** No longer the session's stream on this instance. */
  detached = false;
  /** When a message last arrived on the stream (ms since epoch). */
  lastSeenMs: number;
  /** Dispatcher bookkeeping: a claim for this session is running. */
  claiming = false;
  /** Dispatcher bookkeeping: the last claim was cut short by credit, so more may be ready. */
  creditLimited = false;
  readonly #held = new Map<string, Held>();
  #generation = 0;

  constructor(record: SessionRecord, channel: SessionChannel, nowMs: number) {
    this.id = record.id;
    this.channel = channel;
    this.handlers = new Set(record.handlers);
    this.handlerList = [...record.handlers];
    this.namespaces = record.namespaces;
    this.credit = record.maxInFlight;
    this.workerDraining = record.state === 'draining';
    this.lastSeenMs = nowMs;
  }

  /** Steps held now. */
  get heldCount(): number {
    return this.#held.size;
  }

  /** Credit not used by held steps. */
  get openCredit(): number {
    return Math.max(0, this.credit - this.#held.size);
  }

  /** True when new steps may be sent to this session. */
  get accepting(): boolean {
    return !this.detached && !this.workerDraining && !this.serverDraining && this.channel.open;
  }

  /** A counter that moves on every change of the held set; pass it back to {@link reconcile}. */
  get generation(): number {
    return this.#generation;
  }

  /** Records attempts sent to (or, on resume, still leased to) this session. */
  hold(steps: readonly LeasedStepRef[]): void {
    this.#generation += 1;
    for (const s of steps) this.#held.set(s.stepId, { attempt: s.attempt, generation: this.#generation });
  }

  /** Forgets a held attempt; true when it was held (the session's credit opened by one). */
  release(stepId: string, attempt: number): boolean {
    const held = this.#held.get(stepId);
    if (!held || held.attempt !== attempt) return false;
    this.#held.delete(stepId);
    this.#generation += 1;
    return true;
  }

  /** True when this session holds exactly this attempt. */
  holds(stepId: string, attempt: number): boolean {
    return this.#held.get(stepId)?.attempt === attempt;
  }

  /**
   * Drops held attempts the database no longer leases to the session (the reaper
   * expired them, an operator resolved them), keeping any recorded after
   * `sinceGeneration` (sent while the database was being read). Returns how many.
   */
  reconcile(leased: readonly LeasedStepRef[], sinceGeneration: number): number {
    const live = new Map(leased.map((l) => [l.stepId, l.attempt]));
    let dropped = 0;
    for (const [stepId, held] of this.#held) {
      if (held.generation > sinceGeneration || live.get(stepId) === held.attempt) continue;
      this.#held.delete(stepId);
      dropped += 1;
    }
    if (dropped > 0) this.#generation += 1;
    return dropped;
  }
}
