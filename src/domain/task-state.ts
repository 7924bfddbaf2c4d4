/**
 * Task states, their transition table, and the rule that derives a task's state
 * from the states of its steps. A task's state is never set by hand except for
 * `cancel` and `manual_resolve`: after every change to its steps the engine
 * *settles* it to {@link deriveTaskState}, as a compare-and-swap guarded by the
 * `from` list of the table below (zero rows = not allowed or already there).
 */
import { StepState } from './step-state.js';

/** Every state a task can be in. */
export const TaskState = {
  /** Created; no step has been claimed yet. */
  Pending: 'pending',
  /** Some step is running, or ready to run after others finished. */
  InProgress: 'in_progress',
  /** Nothing is running; the only runnable steps are waiting for their retry backoff. */
  WaitingForRetry: 'waiting_for_retry',
  /** A step failed permanently, but other steps can still run. */
  BlockedByFailures: 'blocked_by_failures',
  /** Every step is complete or resolved manually. */
  Complete: 'complete',
  /** A step failed permanently and nothing else can run (an operator may repair it). */
  Error: 'error',
  /** Cancelled on request. */
  Cancelled: 'cancelled',
  /** An operator declared the whole task done. */
  ResolvedManually: 'resolved_manually',
} as const;
export type TaskState = (typeof TaskState)[keyof typeof TaskState];

/** All task states, in lifecycle order. */
export const TASK_STATES: readonly TaskState[] = Object.values(TaskState);

/** States in which the task still makes progress on its own. */
export const ACTIVE_TASK_STATES: readonly TaskState[] = [
  TaskState.Pending,
  TaskState.InProgress,
  TaskState.WaitingForRetry,
  TaskState.BlockedByFailures,
];

/**
 * States in which a task has finished (`completed_at` is set). `error` is among them,
 * but an operator repair (retrying or resolving a step) can reopen it.
 */
export const TERMINAL_TASK_STATES: readonly TaskState[] = [
  TaskState.Complete,
  TaskState.Error,
  TaskState.Cancelled,
  TaskState.ResolvedManually,
];

/** Marker for transitions whose target is derived from the step counts. */
export const DERIVED = 'derived' as const;

/** One row of the task transition table. */
export interface TaskTransitionRule {
  readonly from: readonly TaskState[];
  readonly to: TaskState | typeof DERIVED;
}

const REPAIRABLE: readonly TaskState[] = [...ACTIVE_TASK_STATES, TaskState.Error];

/** What happens to a task, keyed by event kind. */
export const TASK_TRANSITIONS = {
  /** Automatic: after its steps changed, the task moves to {@link deriveTaskState}. */
  settle: { from: ACTIVE_TASK_STATES, to: DERIVED },
  /** After an operator repair (retry, resolve or complete a step; retry the task): may reopen `error`. */
  repair: { from: REPAIRABLE, to: DERIVED },
  /** Cancel on request: every unfinished step is cancelled too. */
  cancel: { from: REPAIRABLE, to: TaskState.Cancelled },
  /** An operator declares the whole task done. */
  manual_resolve: { from: REPAIRABLE, to: TaskState.ResolvedManually },
} as const satisfies Record<string, TaskTransitionRule>;

/** The kinds of event that move a task. */
export type TaskTransitionKind = keyof typeof TASK_TRANSITIONS;

/** True when `kind` may move a task out of `from`. */
export function canTransitionTask(kind: TaskTransitionKind, from: TaskState): boolean {
  return (TASK_TRANSITIONS[kind].from as readonly TaskState[]).includes(from);
}

/** True when `state` is one a task finishes in. */
export function isTerminalTaskState(state: TaskState): boolean {
  return TERMINAL_TASK_STATES.includes(state);
}

/** True when `value` names a task state. */
export function isTaskState(value: string): value is TaskState {
  return (TASK_STATES as readonly string[]).includes(value);
}

/** How many steps of one task are in each state, plus the one fact counts cannot tell. */
export interface TaskStepCounts {
  readonly total: number;
  readonly byState: Readonly<Record<StepState, number>>;
  /** True when some `pending` step has every parent satisfied (it can be claimed now). */
  readonly readyPending: boolean;
}

/** Counts with every state at zero; handy to build {@link TaskStepCounts} from a partial record. */
export function stepCounts(byState: Partial<Record<StepState, number>>, readyPending = false): TaskStepCounts {
  const full = {} as Record<StepState, number>;
  let total = 0;
  for (const state of Object.values(StepState)) {
    full[state] = byState[state] ?? 0;
    total += full[state];
  }
  return { total, byState: full, readyPending };
}

/**
 * The state a task should be in given its steps:
 * - every step complete or resolved (or no steps) → `complete`;
 * - some step in `error`: `blocked_by_failures` while anything can still run, else `error`;
 * - some step cancelled and nothing can run → `cancelled`;
 * - a step enqueued or in progress → `in_progress`;
 * - every step still pending (nothing happened yet) → `pending`;
 * - a pending step is claimable now → `in_progress`;
 * - only steps waiting for their backoff can run → `waiting_for_retry`.
 *
 * "Can still run" means a step is leased, waiting for retry, or pending with every
 * parent satisfied. Pending steps whose parents are unsatisfied while nothing runs are
 * blocked for good (an ancestor failed or was cancelled), so they do not count.
 * If nothing can run and no step failed or was cancelled, the counts are inconsistent
 * (a blocked step always has an unsatisfied ancestor that can run or has failed); the
 * task is then reported as `error` so that it surfaces instead of hanging.
 */
export function deriveTaskState(counts: TaskStepCounts): TaskState {
  const s = counts.byState;
  const satisfied = s.complete + s.resolved_manually;
  if (counts.total === 0 || satisfied === counts.total) return TaskState.Complete;
  const active = s.enqueued + s.in_progress;
  const canRun = active > 0 || s.waiting_for_retry > 0 || counts.readyPending;
  if (s.error > 0) return canRun ? TaskState.BlockedByFailures : TaskState.Error;
  if (!canRun) return s.cancelled > 0 ? TaskState.Cancelled : TaskState.Error;
  if (active > 0) return TaskState.InProgress;
  if (s.pending === counts.total) return TaskState.Pending;
  if (counts.readyPending) return TaskState.InProgress;
  return TaskState.WaitingForRetry;
}
