/**
 * Claiming ready steps for a worker session: the leases, the task settling that a
 * first claim causes (`pending` → `in_progress`), and each assignment's ancestor
 * results — one statement, so one round trip and one commit per batch (see
 * `claimReadySteps`) — within the byte budget of one StepBatch
 * (`workers.max_batch_bytes`).
 *
 * The claim always takes at least one step. A step whose assignment alone exceeds the
 * budget — in practice, one whose ancestors' results add up to more than the budget,
 * since each child is handed every ancestor's result — can never be sent: the worker
 * would reject the message and report the step lost, again on every attempt. Such a
 * step fails at once, permanently, with `AssignmentTooLarge` (code
 * `ASSIGNMENT_TOO_LARGE`, origin `dispatch`: the server failed it, not a worker) naming
 * its size and the budget; its task is then blocked by the failure. An operator raises
 * `workers.max_batch_bytes` (and the workers' receive limit) and retries the step, or
 * completes or resolves it by hand.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { ValidationError } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import type { DB } from '../store/schema.js';
import { assignmentBytes, claimReadySteps } from '../store/step-claims.js';
import type { ClaimedStep } from '../store/step-claims.js';
import { withTransientRetry } from '../store/transient.js';
import type { OutcomeAck, OutcomeReport } from './outcomes.js';
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
  /** `workers.max_batch_bytes`: most bytes of assignments in the batch (see the file comment). Absent: no limit. */
  readonly maxBatchBytes?: number;
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
  /** Ready steps left for the next claim because the byte budget was spent. */
  readonly leftByBudget?: number;
  /** Steps claimed but failed at once because their assignment alone exceeds the budget. */
  readonly oversized?: readonly OversizedStep[];
}

/** A step too large to send (see the file comment). */
export interface OversizedStep {
  readonly stepId: string;
  readonly attempt: number;
  readonly bytes: number;
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
  const maxBytes = request.maxBatchBytes;
  const claim = await withTransientRetry(() => claimReadySteps(db, { ...request, batchId, maxBytes }), {
    logger: request.logger,
  });
  const assignments: StepAssignment[] = [];
  const oversized: OversizedStep[] = [];
  for (const step of claim.steps) {
    const bytes = maxBytes === undefined ? 0 : assignmentBytes(step);
    if (maxBytes !== undefined && bytes > maxBytes) oversized.push({ stepId: step.stepId, attempt: step.attempt, bytes });
    else assignments.push({ ...step, sessionId, batchId });
  }
  if (oversized.length > 0 && maxBytes !== undefined) await failOversized(db, sessionId, oversized, maxBytes, request);
  return { batchId, assignments, leftByBudget: claim.leftByBudget, oversized };
}

/** Fails steps too large to send, permanently (see the file comment). */
async function failOversized(
  db: Kysely<DB>,
  sessionId: string,
  steps: readonly OversizedStep[],
  maxBytes: number,
  request: ClaimStepsRequest,
): Promise<void> {
  const reports = steps.map((s): OutcomeReport => ({
    reportId: `${s.stepId}:${s.attempt}:too-large`,
    stepId: s.stepId,
    attempt: s.attempt,
    kind: 'failed',
    error: {
      errorClass: 'AssignmentTooLarge',
      message:
        `the step's assignment is ${s.bytes} bytes with its ancestors' results, more than workers.max_batch_bytes ` +
        `(${maxBytes}); it was not sent. Raise workers.max_batch_bytes (and the workers' receive limit) and retry the step`,
      retryable: false,
      code: 'ASSIGNMENT_TOO_LARGE',
    },
  }));
  const acks = await applyOutcomes(db, sessionId, reports, request.now, { logger: request.logger, failureOrigin: 'dispatch' });
  const refused = acks.filter((a) => a.status !== 'accepted');
  request.logger?.error({ sessionId, steps, refused }, 'steps too large for one StepBatch failed without being sent');
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
