/**
 * Streams of TaskService: lifecycle events (SubscribeEvents) and watch updates
 * (WatchTask) for the wire, and the SubscribeEvents request as a bus filter.
 */
import type { Violation } from '../../domain/errors.js';
import { ValidationError } from '../../domain/errors.js';
import type { LifecycleEvent } from '../../domain/events.js';
import { isEventType } from '../../domain/events.js';
import type { EventFilter } from '../../engine/event-subscription.js';
import type { WatchUpdate } from '../../engine/task-watch.js';
import type { Event, SubscribeEventsRequest, TaskUpdate } from '../../gen/tasker/v1/task.js';
import { stepStateToProto, taskStateToProto } from './task.js';

/** One lifecycle event. */
export function eventToProto(e: LifecycleEvent): Event {
  return {
    cursor: e.id,
    eventType: e.kind,
    namespace: e.namespace,
    taskName: e.taskName,
    taskId: e.taskId,
    stepId: e.stepId ?? '',
    stepName: e.stepName ?? '',
    payload: { ...e.payload },
    at: e.createdAt,
  };
}

/** One watch update. */
export function taskUpdateToProto(u: WatchUpdate): TaskUpdate {
  const base = { cursor: u.cursor, at: u.at };
  switch (u.kind) {
    case 'task_state_changed':
      return {
        ...base,
        update: {
          $case: 'taskStateChanged',
          value: { fromState: taskStateToProto(u.from), toState: taskStateToProto(u.to), reason: u.reason ?? '' },
        },
      };
    case 'step_state_changed':
      return {
        ...base,
        update: {
          $case: 'stepStateChanged',
          value: {
            stepId: u.stepId,
            stepName: u.stepName,
            fromState: stepStateToProto(u.from),
            toState: stepStateToProto(u.to),
            attempt: u.attempt,
            reason: u.reason ?? '',
          },
        },
      };
    case 'step_progress':
      return {
        ...base,
        update: {
          $case: 'stepProgress',
          value: { stepId: u.stepId, stepName: u.stepName, attempt: u.attempt, seq: u.seq, payload: u.payload ?? null },
        },
      };
    case 'step_result':
      return {
        ...base,
        update: { $case: 'stepResult', value: { stepId: u.stepId, stepName: u.stepName, attempt: u.attempt, result: u.result ?? null } },
      };
  }
}

/**
 * The request's filters (without the caller's namespace restriction, which the service
 * adds) and its start cursor. Unknown event types and negative cursors are INVALID_ARGUMENT.
 */
export function subscriptionFromProto(req: SubscribeEventsRequest): { filter: EventFilter; afterCursor: number | null } {
  const violations: Violation[] = [];
  req.eventTypes.forEach((type, i) => {
    if (!isEventType(type)) violations.push({ path: `/event_types/${i}`, message: `unknown event type ${JSON.stringify(type)}` });
  });
  const after = req.afterCursor;
  if (after !== undefined && !(Number.isSafeInteger(after) && after >= 0)) {
    violations.push({ path: '/after_cursor', message: 'must be 0 or a cursor received from this server' });
  }
  if (violations.length > 0) throw new ValidationError('invalid SubscribeEvents request', violations);
  return {
    filter: {
      namespace: req.namespace || null,
      taskName: req.taskName || null,
      taskId: req.taskId || null,
      eventTypes: req.eventTypes.length > 0 ? [...new Set(req.eventTypes)] : null,
    },
    afterCursor: after ?? null,
  };
}
