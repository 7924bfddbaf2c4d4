/**
 * Claiming ready steps for a worker session: the leases, the task settling that a
 * first claim causes (`pending` → `in_progress`), and each assignment's ancestor
 * results — one statement, so one round trip and one commit per batch (see
 * `claimReadySteps`).
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { ValidationError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import type { DB } from '../store/schema.js';
import { claimReadySteps } from '../store/steps.js';
import type { ClaimedStep } from '../store/steps.js';
import { withTransientRetry } from '../store/transient.js';
import type { OutcomeAck } from './outcomes.js';
import { applyOutcomes } from './outcomes.js';

/** One step handed to a worker: everything its handler needs. */
export interface StepAssignment extends ClaimedStep {
  readonly sessionId: string;
  readonly batchId: string;
}

/** What {@link claimSteps} needs. */
export interface ClaimStepsRequest {
  readonly sessionId: string;
  /** Handlers the session serves. */
  readonly handlers: readonly string[];
  /** Namespaces the session serves (empty or absent: all). */
  readonly namespaces?: readonly string[];
  /** Open credit: at most this many steps. */
  readonly limit: number;
  readonly leaseMs: number;
  readonly now: Date;
  /** Id of the `step_batches` row; generated when absent. */
  readonly batchId?: string;
  readonly logger?: Logger;
}

/** A batch of assignments for one session (empty when nothing was ready). */
export interface ClaimedBatch {
  readonly batchId: string;
  readonly assignments: readonly StepAssignment[];
}

/**
 * Claims up to `limit` ready steps of `handlers` for `sessionId` and returns their
 * assignments, highest priority and oldest first. Safe to run concurrently from any
 * number of claimers and instances: each ready step is claimed exactly once
 * (`FOR UPDATE SKIP LOCKED`). Transient failures are retried; if a COMMIT is lost
 * the retry fails on the batch id instead of leasing twice, and the leases of the
 * lost commit run out and return the steps to ready.
 */
export async function claimSteps(db: Kysely<DB>, request: ClaimStepsRequest): Promise<ClaimedBatch> {
  const { sessionId, now } = request;
  if (!Number.isInteger(request.limit) || request.limit < 0) {
    throw new ValidationError(`claim limit must be a non-negative integer, got ${request.limit}`);
  }
  if (!(request.leaseMs > 0)) throw new ValidationError(`lease must be positive, got ${request.leaseMs} ms`);
  const batchId = request.batchId ?? newId(now.getTime());
  if (request.limit === 0 || request.handlers.length === 0) return { batchId, assignments: [] };
  // One statement (its own transaction): leases, task counters and states, batch row,
  // transitions, events, ancestor results and the NOTIFY of the events.
  const claim = await withTransientRetry(() => claimReadySteps(db, { ...request, batchId }), { logger: request.logger });
  const assignments = claim.steps.map((s): StepAssignment => ({ ...s, sessionId, batchId }));
  return { batchId, assignments };
}

/** One attempt a worker reported as started. */
export interface StartedRef {
  readonly stepId: string;
  readonly attempt: number;
}

/**
 * Marks attempts as started (`enqueued` → `in_progress`, `step.started`) for a session;
 * the same rules and acks as `applyOutcomes` with `started` reports.
 */
export function markStarted(
  db: Kysely<DB>,
  sessionId: string,
  refs: readonly StartedRef[],
  now: Date,
): Promise<OutcomeAck[]> {
  return applyOutcomes(
    db,
    sessionId,
    refs.map((r) => ({ reportId: `${r.stepId}:${r.attempt}:started`, stepId: r.stepId, attempt: r.attempt, kind: 'started' })),
    now,
  );
}
