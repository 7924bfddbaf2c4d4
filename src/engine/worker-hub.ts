/**
 * The worker sessions whose streams are attached to THIS instance, and what the
 * engine knows about each in memory: handlers, credit, the step attempts it holds,
 * whether it drains. The dispatcher sends batches through it, the result processor
 * acks through it, and cancellations fan out from it — to local streams directly,
 * to other instances through `pg_notify('tasker_cancel', ...)`.
 *
 * What the engine knows about each attached session lives in `AttachedSession`.
 */
import { sql } from 'kysely';
import type { Logger } from 'pino';
import type { Clock } from '../domain/clock.js';
import type { AppError } from '../domain/errors.js';
import type { Database } from '../store/database.js';
import type { LeasedStepRef, SessionRecord } from '../store/sessions.js';
import { detachInstanceSessions } from '../store/sessions.js';
import { AttachedSession } from './attached-session.js';
import type { ClaimedBatch } from './claims.js';
import type { ReportAck } from './result-processor.js';

/** Channel carrying cancellations for sessions attached to other instances. */
export const CANCEL_CHANNEL = 'tasker_cancel';

/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more; stay well below. */
const MAX_NOTIFY_PAYLOAD = 7000;

/**
 * The transport side of one attached session, implemented by the gRPC service in
 * domain terms (the engine never sees proto types).
 */
export interface SessionChannel {
  /** Sends one batch of assignments. False when the transport's buffer is full: wait for {@link whenWritable}. */
  sendBatch(batch: ClaimedBatch): boolean;
  /** Sends the acks of one group commit, in commit order. */
  sendAcks(acks: readonly ReportAck[]): void;
  /** Tells the worker to stop these attempts. */
  sendCancel(steps: readonly LeasedStepRef[], reason: string): void;
  /** Tells the worker the server is shutting down. */
  sendDrain(reason: string, graceMs: number): void;
  /** Resolves once the transport accepts more (at once when it already does or is closed). */
  whenWritable(): Promise<void>;
  /** Ends the stream: OK without an error, otherwise with the error's status. Idempotent. */
  end(error?: AppError): void;
  /** False once the stream ended, from either side. */
  readonly open: boolean;
}

/** A cancelled step attempt and the session that held it (as `TaskManager.cancelTask` reports them). */
export interface CancelledStepRef {
  readonly stepId: string;
  readonly attempt: number;
  readonly sessionId: string | null;
}

/** Options of {@link WorkerHub}. */
export interface WorkerHubOptions {
  readonly database: Database;
  readonly instanceId: string;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** What {@link WorkerHub.attach} did. */
export interface AttachResult {
  readonly attached: AttachedSession;
  /** The older stream of the same session on this instance, now ended. */
  readonly replaced: AttachedSession | null;
}

/** The registry of sessions attached to this instance. */
export class WorkerHub {
  readonly #options: WorkerHubOptions;
  readonly #sessions = new Map<string, AttachedSession>();
  readonly #creditListeners: Array<(session: AttachedSession) => void> = [];
  readonly #detachListeners: Array<(session: AttachedSession) => void> = [];

  constructor(options: WorkerHubOptions) {
    this.#options = options;
  }

  /** Attached sessions, in attach order. */
  sessions(): IterableIterator<AttachedSession> {
    return this.#sessions.values();
  }

  /** Number of attached sessions. */
  get size(): number {
    return this.#sessions.size;
  }

  /** The handlers served by attached sessions that may take steps now (accepting, with open credit). */
  openHandlers(): Set<string> {
    const handlers = new Set<string>();
    for (const session of this.#sessions.values()) {
      if (!session.accepting || session.openCredit === 0) continue;
      for (const handler of session.handlerList) handlers.add(handler);
    }
    return handlers;
  }

  /** The session attached here with this id, or undefined. */
  get(sessionId: string): AttachedSession | undefined {
    return this.#sessions.get(sessionId);
  }

  /** Calls `listener` whenever a session's credit opens (held steps released, Credit raised). */
  onCreditOpened(listener: (session: AttachedSession) => void): void {
    this.#creditListeners.push(listener);
  }

  /** Calls `listener` whenever a session is detached from this instance. */
  onDetached(listener: (session: AttachedSession) => void): void {
    this.#detachListeners.push(listener);
  }

  /** Records that a message just arrived on `session`'s stream (see {@link endSilent}). */
  touch(session: AttachedSession): void {
    session.lastSeenMs = this.#options.clock.now().getTime();
  }

  /** Tells listeners that `session` may take more steps. */
  creditOpened(session: AttachedSession): void {
    if (session.detached) return;
    for (const listener of this.#creditListeners) listener(session);
  }

  /**
   * Attaches a session's stream, holding `leased` (its steps still leased, from the
   * database). An older stream of the same session on this instance is detached and
   * ended with `replacedError`.
   */
  attach(record: SessionRecord, channel: SessionChannel, leased: readonly LeasedStepRef[], replacedError: AppError): AttachResult {
    const attached = new AttachedSession(record, channel, this.#options.clock.now().getTime());
    attached.hold(leased);
    const replaced = this.#sessions.get(record.id) ?? null;
    if (replaced) {
      this.#markDetached(replaced);
      replaced.channel.end(replacedError);
    }
    this.#sessions.set(record.id, attached);
    return { attached, replaced };
  }

  /** Detaches `session` if it is still the attached stream of its id; true when it was. */
  detach(session: AttachedSession): boolean {
    if (session.detached || this.#sessions.get(session.id) !== session) return false;
    this.#markDetached(session);
    return true;
  }

  #markDetached(session: AttachedSession): void {
    session.detached = true;
    if (this.#sessions.get(session.id) === session) this.#sessions.delete(session.id);
    for (const listener of this.#detachListeners) listener(session);
  }

  /**
   * Delivers a cancellation: sessions attached here get `Cancel {steps, reason}` at
   * once (and the steps stop counting against their credit); steps held by sessions
   * attached elsewhere (or not attached at all) are published on `tasker_cancel` for
   * every instance to deliver to its own streams.
   */
  async deliverCancel(steps: readonly CancelledStepRef[], reason: string): Promise<void> {
    const remote = this.deliverLocalCancel(steps, reason);
    if (remote.length === 0) return;
    for (const payload of encodeCancelPayloads(remote, reason)) {
      await sql`select pg_notify(${CANCEL_CHANNEL}, ${payload}::text)`.execute(this.#options.database.db);
    }
  }

  /** Delivers the steps held by sessions attached here; returns the others. */
  deliverLocalCancel(steps: readonly CancelledStepRef[], reason: string): CancelledStepRef[] {
    const bySession = new Map<AttachedSession, LeasedStepRef[]>();
    const remote: CancelledStepRef[] = [];
    for (const step of steps) {
      const session = step.sessionId ? this.#sessions.get(step.sessionId) : undefined;
      if (!session) {
        if (step.sessionId) remote.push(step);
        continue;
      }
      const list = bySession.get(session) ?? [];
      list.push({ stepId: step.stepId, attempt: step.attempt });
      bySession.set(session, list);
    }
    for (const [session, list] of bySession) {
      session.channel.sendCancel(list, reason);
      const released = list.filter((s) => session.release(s.stepId, s.attempt)).length;
      if (released > 0) this.creditOpened(session);
    }
    return remote;
  }

  /** Handles a `tasker_cancel` notification (from any instance, this one included). */
  handleCancelNotification(payload: string): void {
    const decoded = decodeCancelPayload(payload);
    if (!decoded) {
      this.#options.logger.warn({ channel: CANCEL_CHANNEL }, 'ignoring a malformed cancel notification');
      return;
    }
    this.deliverLocalCancel(decoded.steps, decoded.reason);
  }

  /**
   * Ends streams that have been silent longer than `silenceMs` (no heartbeat, no
   * report): the worker is gone or cut off, and this instance must stop sending it
   * steps. The session itself lives on until it expires. Returns the ended sessions.
   */
  endSilent(silenceMs: number, error: AppError): AttachedSession[] {
    const cutoff = this.#options.clock.now().getTime() - silenceMs;
    const silent = [...this.#sessions.values()].filter((s) => s.lastSeenMs < cutoff);
    for (const session of silent) session.channel.end(error);
    return silent;
  }

  /**
   * Server shutdown: sends Drain to every stream, stops new assignments, waits up to
   * `graceMs` for the workers to report what they hold and for `settled()` (the result
   * processor's queue) to empty, then ends every stream and marks this instance's
   * sessions disconnected so their workers can resume elsewhere.
   */
  async drainAll(reason: string, graceMs: number, settled: () => Promise<void>): Promise<void> {
    const clock = this.#options.clock;
    const deadline = clock.now().getTime() + graceMs;
    for (const session of this.#sessions.values()) {
      session.serverDraining = true;
      if (session.channel.open) session.channel.sendDrain(reason, graceMs);
    }
    const busy = (): boolean => [...this.#sessions.values()].some((s) => s.channel.open && s.heldCount > 0);
    while (busy() && clock.now().getTime() < deadline) await sleep(Math.min(20, Math.max(1, deadline - clock.now().getTime())));
    const remaining = Math.max(0, deadline - clock.now().getTime());
    await Promise.race([settled(), sleep(remaining)]);
    for (const session of [...this.#sessions.values()]) {
      this.#markDetached(session);
      session.channel.end();
    }
    await detachInstanceSessions(this.#options.database.db, this.#options.instanceId, clock.now()).catch((err: unknown) => {
      this.#options.logger.warn({ err }, 'could not mark this instance\'s sessions disconnected');
    });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** `tasker_cancel` payloads for `steps`, each below PostgreSQL's NOTIFY limit. */
export function encodeCancelPayloads(steps: readonly CancelledStepRef[], reason: string): string[] {
  const shortReason = reason.length > 500 ? reason.slice(0, 500) : reason;
  const base = JSON.stringify({ r: shortReason, s: [] }).length;
  const payloads: string[] = [];
  let chunk: Array<[string, number, string]> = [];
  let size = base;
  for (const step of steps) {
    if (!step.sessionId) continue;
    const entry: [string, number, string] = [step.stepId, step.attempt, step.sessionId];
    const entrySize = JSON.stringify(entry).length + 1;
    if (chunk.length > 0 && size + entrySize > MAX_NOTIFY_PAYLOAD) {
      payloads.push(JSON.stringify({ r: shortReason, s: chunk }));
      chunk = [];
      size = base;
    }
    chunk.push(entry);
    size += entrySize;
  }
  if (chunk.length > 0) payloads.push(JSON.stringify({ r: shortReason, s: chunk }));
  return payloads;
}

/** Parses a `tasker_cancel` payload; null when it is not one. */
export function decodeCancelPayload(payload: string): { steps: CancelledStepRef[]; reason: string } | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    return null;
  }
  const { r, s } = (parsed ?? {}) as { r?: unknown; s?: unknown };
  if (typeof r !== 'string' || !Array.isArray(s)) return null;
  const steps: CancelledStepRef[] = [];
  for (const entry of s) {
    if (!Array.isArray(entry) || entry.length !== 3) return null;
    const [stepId, attempt, sessionId] = entry as unknown[];
    if (typeof stepId !== 'string' || typeof attempt !== 'number' || typeof sessionId !== 'string') return null;
    steps.push({ stepId, attempt, sessionId });
  }
  return { steps, reason: r };
}
