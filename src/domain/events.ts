/**
 * Lifecycle events: every task or step transition appends one row to
 * `tasker_events` in the same transaction, named from this catalog. The row id is
 * the monotonic cursor `SubscribeEvents` resumes from.
 */
import type { StepState } from './step-state.js';
import { TaskState } from './task-state.js';

/** Task lifecycle event names. */
export const TaskEvent = {
  Created: 'task.created',
  Started: 'task.started',
  /** Back to `in_progress` from `waiting_for_retry` or `blocked_by_failures`. */
  Resumed: 'task.resumed',
  /** Nothing runs; the only runnable steps wait for their retry backoff. */
  WaitingForRetry: 'task.waiting_for_retry',
  Blocked: 'task.blocked',
  Completed: 'task.completed',
  Failed: 'task.failed',
  Cancelled: 'task.cancelled',
  /** An operator repair reopened the task. */
  RetryRequested: 'task.retry_requested',
  ResolvedManually: 'task.resolved_manually',
} as const;
export type TaskEvent = (typeof TaskEvent)[keyof typeof TaskEvent];

/** Step lifecycle event names. */
export const StepEvent = {
  Enqueued: 'step.enqueued',
  Started: 'step.started',
  Progress: 'step.progress',
  Completed: 'step.completed',
  /** Failed permanently (non-retryable, or attempts exhausted). */
  Failed: 'step.failed',
  /** An operator asked for the step to run again. */
  RetryRequested: 'step.retry_requested',
  /** Failed retryably; will be claimable again at `ready_at`. */
  Backoff: 'step.backoff',
  TimedOut: 'step.timed_out',
  LeaseExpired: 'step.lease_expired',
  Cancelled: 'step.cancelled',
  ResolvedManually: 'step.resolved_manually',
  CompletedManually: 'step.completed_manually',
} as const;
export type StepEvent = (typeof StepEvent)[keyof typeof StepEvent];

/** Every lifecycle event name. */
export type EventType = TaskEvent | StepEvent;

/** All event names, for filters and validation. */
export const EVENT_TYPES: readonly EventType[] = [...Object.values(TaskEvent), ...Object.values(StepEvent)];

/** True when `value` is a known event name. */
export function isEventType(value: string): value is EventType {
  return (EVENT_TYPES as readonly string[]).includes(value);
}

/** Why a task moved: on its own (`settle`) or because an operator repaired it. */
export type TaskChangeCause = 'settle' | 'repair';

/** The event recorded when a task moves from `from` to `to`. */
export function taskEventFor(from: TaskState, to: TaskState, cause: TaskChangeCause): TaskEvent {
  switch (to) {
    case TaskState.Complete:
      return TaskEvent.Completed;
    case TaskState.Error:
      return TaskEvent.Failed;
    case TaskState.BlockedByFailures:
      return cause === 'repair' && from === TaskState.Error ? TaskEvent.RetryRequested : TaskEvent.Blocked;
    case TaskState.Cancelled:
      return TaskEvent.Cancelled;
    case TaskState.ResolvedManually:
      return TaskEvent.ResolvedManually;
    case TaskState.WaitingForRetry:
      return cause === 'repair' ? TaskEvent.RetryRequested : TaskEvent.WaitingForRetry;
    case TaskState.Pending:
      return TaskEvent.RetryRequested;
    case TaskState.InProgress:
      if (cause === 'repair') return TaskEvent.RetryRequested;
      return from === TaskState.Pending ? TaskEvent.Started : TaskEvent.Resumed;
  }
}

/** A lifecycle event as stored and streamed (`tasker_events`). */
export interface LifecycleEvent {
  /** Monotonic cursor (the row id). */
  readonly id: number;
  readonly kind: EventType;
  readonly namespace: string;
  readonly taskName: string;
  readonly taskId: string;
  readonly stepId: string | null;
  readonly stepName: string | null;
  /** Event-specific details: `from`/`to` state, `attempt`, `reason`, `error`, `delay_ms`, ... */
  readonly payload: Readonly<Record<string, unknown>>;
  readonly createdAt: Date;
}

/** Payload fields every transition event carries. */
export interface TransitionEventPayload {
  readonly from: TaskState | StepState | null;
  readonly to: TaskState | StepState;
  readonly attempt?: number;
  readonly reason?: string | null;
}
