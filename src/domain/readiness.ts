/**
 * The reference definition of step readiness over an in-memory DAG. The engine
 * never evaluates this at run time — readiness is maintained incrementally in the
 * database (`pending_parents`, `ready_at`) — but tests use it to check that the
 * incremental state, and the SQL parity function `step_readiness(task)`, agree.
 *
 * A step is ready when it is `pending` or `waiting_for_retry`, every parent is
 * `complete` or `resolved_manually`, it is retry-eligible (the first attempt of an
 * allowance always is; later ones while the allowance has attempts left), and any retry
 * backoff has elapsed.
 */
import { CLAIMABLE_STEP_STATES, DEPENDENCY_SATISFYING_STATES, StepState } from './step-state.js';

/** What readiness needs to know about one step. */
export interface ReadinessStep {
  readonly id: string;
  readonly state: StepState;
  /** Attempts made so far over the step's life (dispatches); 0 before the first. */
  readonly attempts: number;
  /** Attempts made before the current retry allowance (set by an operator retry); default 0. */
  readonly attemptBase?: number;
  /** Attempts per allowance. */
  readonly maxAttempts: number;
  /** For `waiting_for_retry`: when the backoff ends. Ignored for other states. */
  readonly retryAt?: Date | null;
}

/** A dependency: `to` runs after `from`. */
export interface ReadinessEdge {
  readonly from: string;
  readonly to: string;
}

/** Readiness of one step. */
export interface StepReadiness {
  /** Every parent is complete or resolved manually (true for roots). */
  readonly dependenciesSatisfied: boolean;
  /** It may make another attempt: the first of an allowance always, later ones while the allowance has attempts left. */
  readonly retryEligible: boolean;
  /** It can be claimed now. */
  readonly ready: boolean;
  /** For `waiting_for_retry`: when it becomes claimable; null otherwise. */
  readonly nextRetryAt: Date | null;
  /** Parents not yet complete or resolved: what the `pending_parents` column must hold. */
  readonly pendingParents: number;
}

/** Evaluates every step's readiness at `now`. Throws on an edge naming an unknown step. */
export function evaluateReadiness(
  steps: readonly ReadinessStep[],
  edges: readonly ReadinessEdge[],
  now: Date,
): Map<string, StepReadiness> {
  const byId = new Map(steps.map((s) => [s.id, s]));
  const unsatisfiedParents = new Map<string, number>(steps.map((s) => [s.id, 0]));
  for (const edge of edges) {
    const parent = byId.get(edge.from);
    if (!parent || !byId.has(edge.to)) throw new RangeError(`edge ${edge.from} -> ${edge.to} names an unknown step`);
    if (!DEPENDENCY_SATISFYING_STATES.includes(parent.state)) {
      unsatisfiedParents.set(edge.to, (unsatisfiedParents.get(edge.to) ?? 0) + 1);
    }
  }
  const out = new Map<string, StepReadiness>();
  for (const step of steps) {
    const pendingParents = unsatisfiedParents.get(step.id) ?? 0;
    const dependenciesSatisfied = pendingParents === 0;
    const used = step.attempts - (step.attemptBase ?? 0);
    const retryEligible = used === 0 || used < step.maxAttempts;
    const waiting = step.state === StepState.WaitingForRetry;
    const nextRetryAt = waiting ? (step.retryAt ?? null) : null;
    const backoffOver = !waiting || nextRetryAt === null || nextRetryAt.getTime() <= now.getTime();
    const ready = CLAIMABLE_STEP_STATES.includes(step.state) && dependenciesSatisfied && retryEligible && backoffOver;
    out.set(step.id, { dependenciesSatisfied, retryEligible, ready, nextRetryAt, pendingParents });
  }
  return out;
}
