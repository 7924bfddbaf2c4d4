/**
 * The retry rule: what happens when an attempt of a step fails, and how long to wait
 * before the next one. Pure; randomness is injectable so every branch is testable.
 */
import { Backoff, type RetryPolicy } from './template.js';

/** The policy a step gets when its template says nothing: 3 attempts, exponential from 1 s to 60 s, 10% jitter. */
export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  maxAttempts: 3,
  backoff: Backoff.Exponential,
  baseMs: 1_000,
  maxMs: 60_000,
  jitter: 0.1,
});

/** Exponents beyond this already exceed any cap; clamping keeps `2 ** n` finite. */
const MAX_EXPONENT = 62;

/**
 * Milliseconds to wait after attempt `attempt` (1-based: the attempt that just failed)
 * before the next one. The undelayed value is `baseMs * 2^(attempt-1)` (exponential),
 * `baseMs * attempt` (linear) or `baseMs` (fixed), capped at `maxMs`; jitter then
 * draws it uniformly from `[d * (1 - jitter), d * (1 + jitter)]`, and the result is
 * capped at `maxMs` again, rounded to whole milliseconds and never negative.
 * `attempt` below 1 counts as 1. `random` returns a number in [0, 1).
 */
export function backoffDelayMs(policy: RetryPolicy, attempt: number, random: () => number = Math.random): number {
  const n = Math.max(1, Math.floor(attempt));
  const base = Math.max(0, policy.baseMs);
  const cap = Math.max(0, policy.maxMs);
  let delay: number;
  switch (policy.backoff) {
    case Backoff.Exponential:
      delay = base * 2 ** Math.min(n - 1, MAX_EXPONENT);
      break;
    case Backoff.Linear:
      delay = base * n;
      break;
    case Backoff.Fixed:
      delay = base;
      break;
  }
  delay = Math.min(delay, cap);
  const jitter = Math.min(1, Math.max(0, policy.jitter));
  if (jitter > 0 && delay > 0) {
    delay = delay * (1 - jitter + 2 * jitter * random());
    delay = Math.min(delay, cap);
  }
  return Math.max(0, Math.round(delay));
}

/** What to do with a step whose attempt failed. */
export type FailureDecision =
  /** Try again after `delayMs` (the step waits for retry). */
  | { readonly kind: 'retry'; readonly delayMs: number }
  /** The failure was retryable but no attempts remain (the step is in error). */
  | { readonly kind: 'exhausted' }
  /** The failure was not retryable (the step is in error). */
  | { readonly kind: 'permanent' };

/** The facts `decideFailure` needs about one failed attempt. */
export interface FailureInput {
  readonly policy: RetryPolicy;
  /** The attempt that failed, 1-based. */
  readonly attempt: number;
  /** False when the worker (or the server) declared the failure permanent. */
  readonly retryable: boolean;
  /** The worker's requested delay; when present it replaces the computed backoff. */
  readonly retryAfterMs?: number | null;
  /** Source of randomness for jitter, returning [0, 1); defaults to Math.random. */
  readonly random?: () => number;
}

/**
 * Decides the fate of a failed attempt, in this order: a non-retryable failure is
 * `permanent`; a retryable one at `attempt >= maxAttempts` is `exhausted`; otherwise
 * `retry`, after the worker's `retryAfterMs` when given (honoured exactly, not capped
 * by `maxMs`, rounded, never negative) or else after `backoffDelayMs`.
 */
export function decideFailure(input: FailureInput): FailureDecision {
  if (!input.retryable) return { kind: 'permanent' };
  if (input.attempt >= input.policy.maxAttempts) return { kind: 'exhausted' };
  const requested = input.retryAfterMs;
  if (requested !== undefined && requested !== null && Number.isFinite(requested)) {
    return { kind: 'retry', delayMs: Math.max(0, Math.round(requested)) };
  }
  return { kind: 'retry', delayMs: backoffDelayMs(input.policy, input.attempt, input.random) };
}
