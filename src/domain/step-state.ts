/**
 * Step states and the transitions between them. The table below is the single
 * source of truth: the engine checks a transition against it in TypeScript, and
 * every SQL update that moves a step is a compare-and-swap guarded by the same
 * `from` list (`WHERE state = ANY(:allowedFrom)`); zero rows updated means the
 * transition was not allowed or has already happened, and is a no-op.
 *
 * Terminology: a step is *satisfied* when its dependants may run (`complete` or
 * `resolved_manually`); it is *terminal* when nothing but an operator can move it.
 */

/** Every state a step can be in. */
export const StepState = {
  /** Created; waiting for its parents or for a worker to claim it. */
  Pending: 'pending',
  /** Leased to a worker session (claimed, sent in a batch), not yet reported as started. */
  Enqueued: 'enqueued',
  /** The worker reported that it started the current attempt. */
  InProgress: 'in_progress',
  /** The last attempt failed retryably; claimable again once `ready_at` has passed. */
  WaitingForRetry: 'waiting_for_retry',
  /** The handler succeeded; `result` holds its output. */
  Complete: 'complete',
  /** Failed permanently (non-retryable error or attempts exhausted). */
  Error: 'error',
  /** The task was cancelled before this step finished. */
  Cancelled: 'cancelled',
  /** An operator declared the step done without a result. */
  ResolvedManually: 'resolved_manually',
} as const;
export type StepState = (typeof StepState)[keyof typeof StepState];

/** All step states, in lifecycle order. */
export const STEP_STATES: readonly StepState[] = Object.values(StepState);

/** States nothing but an operator can move a step out of. */
export const TERMINAL_STEP_STATES: readonly StepState[] = [
  StepState.Complete,
  StepState.Error,
  StepState.Cancelled,
  StepState.ResolvedManually,
];

/** States in which a step satisfies the dependency of its children. */
export const DEPENDENCY_SATISFYING_STATES: readonly StepState[] = [StepState.Complete, StepState.ResolvedManually];

/** States in which a step holds a lease (a worker session may be running it). */
export const LEASED_STEP_STATES: readonly StepState[] = [StepState.Enqueued, StepState.InProgress];

/** States from which a step can be claimed once its parents are satisfied and `ready_at` has passed. */
export const CLAIMABLE_STEP_STATES: readonly StepState[] = [StepState.Pending, StepState.WaitingForRetry];

/** Marker for transitions whose target is decided at run time (e.g. by the retry policy). */
export const DECIDED = 'decided' as const;

/** One row of the transition table: the states it may start from, and where it goes. */
export interface StepTransitionRule {
  readonly from: readonly StepState[];
  /** The target state, or `decided` when it depends on the attempt and the retry policy. */
  readonly to: StepState | typeof DECIDED;
  /** The targets a `decided` transition may choose between (equal to `[to]` otherwise). */
  readonly targets: readonly StepState[];
}

function rule(from: readonly StepState[], to: StepState): StepTransitionRule;
function rule(from: readonly StepState[], to: typeof DECIDED, targets: readonly StepState[]): StepTransitionRule;
function rule(from: readonly StepState[], to: StepState | typeof DECIDED, targets?: readonly StepState[]): StepTransitionRule {
  return { from, to, targets: targets ?? [to as StepState] };
}

const { Pending, Enqueued, InProgress, WaitingForRetry, Complete, Error: ErrorState, Cancelled, ResolvedManually } =
  StepState;

/** What happens to a step, keyed by event kind. */
export const STEP_TRANSITIONS = {
  /** A claimer leased the step to a session (attempt + 1). */
  enqueue: rule([Pending, WaitingForRetry], Enqueued),
  /** The worker reported `StepStarted` for the current attempt. */
  start: rule([Enqueued], InProgress),
  /** The worker reported success. */
  complete: rule([Enqueued, InProgress], Complete),
  /** The worker reported a retryable failure and attempts remain. */
  fail_retry: rule([Enqueued, InProgress], WaitingForRetry),
  /** The worker reported a non-retryable failure, or attempts are exhausted. */
  fail_permanent: rule([Enqueued, InProgress], ErrorState),
  /** The lease ran out (worker gone): the attempt counts; retried at once if attempts remain. */
  lease_expired: rule([Enqueued, InProgress], DECIDED, [WaitingForRetry, ErrorState]),
  /** The step ran past its `timeout_ms`: a failure through the retry policy. */
  timeout: rule([Enqueued, InProgress], DECIDED, [WaitingForRetry, ErrorState]),
  /** The task was cancelled. */
  cancel: rule([Pending, Enqueued, InProgress, WaitingForRetry], Cancelled),
  /** An operator asked for a failed step to run again (a fresh allowance of attempts; numbering continues). */
  manual_retry: rule([ErrorState], Pending),
  /** An operator declared the step done without a result; children are released. */
  manual_resolve: rule([Pending, WaitingForRetry, ErrorState], ResolvedManually),
  /** An operator supplied the step's result; children are released. */
  manual_complete: rule([Pending, WaitingForRetry, ErrorState], Complete),
} as const satisfies Record<string, StepTransitionRule>;

/** The kinds of event that move a step. */
export type StepTransitionKind = keyof typeof STEP_TRANSITIONS;

/** True when `kind` may move a step out of `from`. */
export function canTransitionStep(kind: StepTransitionKind, from: StepState): boolean {
  return (STEP_TRANSITIONS[kind].from as readonly StepState[]).includes(from);
}

/**
 * The state `kind` moves a step from `from` to, or null when the table does not allow
 * it. For `decided` transitions `decided` names the chosen target, which must be one of
 * the rule's targets.
 */
export function nextStepState(kind: StepTransitionKind, from: StepState, decided?: StepState): StepState | null {
  const r: StepTransitionRule = STEP_TRANSITIONS[kind];
  if (!canTransitionStep(kind, from)) return null;
  if (r.to !== DECIDED) return r.to;
  if (decided === undefined || !r.targets.includes(decided)) {
    throw new RangeError(`transition ${kind} must decide one of ${r.targets.join(', ')}, got ${String(decided)}`);
  }
  return decided;
}

/** True for states nothing but an operator can move a step out of. */
export function isTerminalStepState(state: StepState): boolean {
  return TERMINAL_STEP_STATES.includes(state);
}

/** True when `value` names a step state. */
export function isStepState(value: string): value is StepState {
  return (STEP_STATES as readonly string[]).includes(value);
}
