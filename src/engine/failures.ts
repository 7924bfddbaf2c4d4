/**
 * Turning a failed attempt — reported by a worker, decided by the server at dispatch,
 * a lost lease, or a timeout — into the step's next state through its retry policy,
 * and the stored error.
 */
import { StepEvent } from '../domain/events.js';
import { decideFailure } from '../domain/retry-policy.js';
import { StepState } from '../domain/step-state.js';
import type { StepChange } from '../store/step-changes.js';
import type { LockedStep } from '../store/steps.js';
import { retryPolicyFromRow } from '../store/step-records.js';

/** A failure as workers report it (DESIGN §3). */
export interface StepFailure {
  readonly errorClass: string;
  readonly message: string;
  readonly backtrace?: readonly string[];
  /** False makes the failure permanent whatever attempts remain. */
  readonly retryable: boolean;
  /** Overrides the policy's backoff for the next attempt. */
  readonly retryAfterMs?: number | null;
  readonly code?: string | null;
  /** Application-defined details (a JSON object); stored with the error and returned with it. */
  readonly details?: Record<string, unknown> | null;
}

/**
 * Who decided the attempt failed: the worker's report (`worker`); the server before
 * sending the step (`dispatch`: its assignment exceeds `workers.max_batch_bytes`); the
 * reaper, for a lease that ran out (`lease_expired`) or a deadline (`timeout`).
 */
export type FailureOrigin = 'worker' | 'dispatch' | 'lease_expired' | 'timeout';

/** The next state of a failed attempt. */
export interface FailureDecision {
  readonly to: typeof StepState.WaitingForRetry | typeof StepState.Error;
  /** For a retry: the backoff, and when the step becomes claimable. */
  readonly delayMs: number | null;
  readonly readyAt: Date | null;
  /** `permanent`: not retryable; `exhausted`: no attempts left; `retry`: will run again. */
  readonly outcome: 'retry' | 'exhausted' | 'permanent';
}

/**
 * The failed attempt's position in the step's current retry allowance (1-based). Attempt
 * numbers run on over the step's whole life; an operator retry starts a new allowance at
 * `attemptBase`, and the retry policy — attempts left, backoff — counts from there.
 */
export function allowanceAttempt(step: Pick<LockedStep, 'attempts' | 'attemptBase'>): number {
  return step.attempts - step.attemptBase;
}

/** Applies the step's retry policy to a failure of its current attempt (`step.attempts`). */
export function decideStepFailure(step: LockedStep, failure: StepFailure, now: Date, random: () => number): FailureDecision {
  const policy = retryPolicyFromRow(step.retry, step.maxAttempts);
  const d = decideFailure({
    policy,
    attempt: allowanceAttempt(step),
    retryable: failure.retryable,
    retryAfterMs: failure.retryAfterMs ?? null,
    random,
  });
  if (d.kind === 'retry') {
    return { to: StepState.WaitingForRetry, delayMs: d.delayMs, readyAt: new Date(now.getTime() + d.delayMs), outcome: 'retry' };
  }
  return { to: StepState.Error, delayMs: null, readyAt: null, outcome: d.kind };
}

/** A lost lease: retried at once while the allowance has attempts left (the attempt counts), else the step is in error. */
export function decideLeaseLoss(step: LockedStep, now: Date): FailureDecision {
  return allowanceAttempt(step) < step.maxAttempts
    ? { to: StepState.WaitingForRetry, delayMs: 0, readyAt: now, outcome: 'retry' }
    : { to: StepState.Error, delayMs: null, readyAt: null, outcome: 'exhausted' };
}

/** The `last_error` document: DESIGN's failure fields plus which attempt failed and who said so. */
export function failureDocument(failure: StepFailure, attempt: number, origin: FailureOrigin): Record<string, unknown> {
  return {
    error_class: failure.errorClass,
    message: failure.message,
    backtrace: failure.backtrace ?? [],
    retryable: failure.retryable,
    retry_after_ms: failure.retryAfterMs ?? null,
    code: failure.code ?? null,
    details: failure.details ?? null,
    attempt,
    origin,
  };
}

const TRANSITION_KIND: Record<FailureOrigin, 'lease_expired' | 'timeout' | null> = {
  worker: null,
  dispatch: null,
  lease_expired: 'lease_expired',
  timeout: 'timeout',
};

/** The step change for a failed attempt, for `applyStepChanges`. */
export function failureChange(
  step: LockedStep,
  from: StepState,
  decision: FailureDecision,
  failure: StepFailure,
  origin: FailureOrigin,
  attempt: number,
): StepChange {
  const document = failureDocument(failure, attempt, origin);
  const retry = decision.to === StepState.WaitingForRetry;
  const kind = TRANSITION_KIND[origin] ?? (retry ? 'fail_retry' : 'fail_permanent');
  const event =
    origin === 'timeout' ? StepEvent.TimedOut
    : origin === 'lease_expired' ? StepEvent.LeaseExpired
    : retry ? StepEvent.Backoff
    : StepEvent.Failed;
  return {
    stepId: step.id,
    taskId: step.taskId,
    from,
    to: decision.to,
    kind,
    attempt,
    reason: `${failure.errorClass}: ${failure.message}`.slice(0, 1000),
    metadata: { error: document, outcome: decision.outcome, ...(retry ? { delay_ms: decision.delayMs } : {}) },
    event,
    eventPayload: {
      error: document,
      outcome: decision.outcome,
      ...(retry ? { delay_ms: decision.delayMs, retry_at: decision.readyAt?.toISOString() } : {}),
    },
    errorJson: JSON.stringify(document),
    ...(retry ? { readyAt: decision.readyAt } : {}),
    // A lost lease or a timeout marks the attempt's batch timed out.
    batchOutcome: origin === 'worker' || origin === 'dispatch' ? 'failed' : 'timed_out',
    namespace: step.namespace,
    taskName: step.taskName,
    stepName: step.name,
  };
}
