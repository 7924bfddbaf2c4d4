/**
 * TaskService messages ↔ domain: create requests, tasks with their steps, edges and
 * execution context, list filters, and the state enums. Empty proto strings mean
 * "none" (null in the domain) and come back as empty strings.
 */
import type { Violation } from '../../domain/errors.js';
import { ValidationError } from '../../domain/errors.js';
import type { StepState as DomainStepState } from '../../domain/step-state.js';
import type { TaskState as DomainTaskState } from '../../domain/task-state.js';
import type { CreateTaskRequest as DomainCreateTaskRequest } from '../../engine/task-manager.js';
import { StepState, TaskState } from '../../gen/tasker/v1/common.js';
import type { StepError } from '../../gen/tasker/v1/common.js';
import type { CreateTaskRequest, ExecutionContext, ListTasksRequest, Step, Task } from '../../gen/tasker/v1/task.js';
import type { ExecutionContext as DomainExecutionContext } from '../../store/readiness-reads.js';
import type { ListTasksOptions, StepDetails, TaskDetails } from '../../store/task-reads.js';
import type { TaskRecord } from '../../store/tasks.js';

const TASK_STATE_OUT: Readonly<Record<DomainTaskState, TaskState>> = {
  pending: TaskState.TASK_STATE_PENDING,
  in_progress: TaskState.TASK_STATE_IN_PROGRESS,
  waiting_for_retry: TaskState.TASK_STATE_WAITING_FOR_RETRY,
  blocked_by_failures: TaskState.TASK_STATE_BLOCKED_BY_FAILURES,
  complete: TaskState.TASK_STATE_COMPLETE,
  error: TaskState.TASK_STATE_ERROR,
  cancelled: TaskState.TASK_STATE_CANCELLED,
  resolved_manually: TaskState.TASK_STATE_RESOLVED_MANUALLY,
};

const STEP_STATE_OUT: Readonly<Record<DomainStepState, StepState>> = {
  pending: StepState.STEP_STATE_PENDING,
  enqueued: StepState.STEP_STATE_ENQUEUED,
  in_progress: StepState.STEP_STATE_IN_PROGRESS,
  waiting_for_retry: StepState.STEP_STATE_WAITING_FOR_RETRY,
  complete: StepState.STEP_STATE_COMPLETE,
  error: StepState.STEP_STATE_ERROR,
  cancelled: StepState.STEP_STATE_CANCELLED,
  resolved_manually: StepState.STEP_STATE_RESOLVED_MANUALLY,
};

const TASK_STATE_IN = new Map<number, DomainTaskState>(
  Object.entries(TASK_STATE_OUT).map(([domain, proto]) => [proto, domain as DomainTaskState]),
);

/** A domain task state on the wire; null (no previous state) is UNSPECIFIED. */
export function taskStateToProto(state: DomainTaskState | null): TaskState {
  return state === null ? TaskState.TASK_STATE_UNSPECIFIED : TASK_STATE_OUT[state];
}

/** A domain step state on the wire; null (no previous state) is UNSPECIFIED. */
export function stepStateToProto(state: DomainStepState | null): StepState {
  return state === null ? StepState.STEP_STATE_UNSPECIFIED : STEP_STATE_OUT[state];
}

const none = (text: string): string | null => (text === '' ? null : text);

/** A CreateTask request for the engine; a missing template reference is INVALID_ARGUMENT. */
export function createTaskRequestFromProto(req: CreateTaskRequest): DomainCreateTaskRequest {
  const ref = req.template;
  const violations: Violation[] = [];
  if (!ref || ref.namespace === '') violations.push({ path: '/template/namespace', message: 'is required' });
  if (!ref || ref.name === '') violations.push({ path: '/template/name', message: 'is required' });
  if (violations.length > 0 || !ref) throw new ValidationError('CreateTask needs a template reference (namespace and name)', violations);
  return {
    template: { namespace: ref.namespace, name: ref.name, version: none(ref.version) },
    context: req.context ?? {},
    priority: req.priority,
    tags: req.tags,
    initiator: none(req.initiator),
    sourceSystem: none(req.sourceSystem),
    reason: none(req.reason),
    correlationId: none(req.correlationId),
    idempotencyKey: none(req.idempotencyKey),
  };
}

/** A stored failure document (`failureDocument`) as a StepError. */
export function stepErrorToProto(doc: Record<string, unknown> | null): StepError | undefined {
  if (!doc) return undefined;
  const str = (v: unknown): string => (typeof v === 'string' ? v : '');
  const retryAfter = doc['retry_after_ms'];
  const details = doc['details'];
  return {
    errorClass: str(doc['error_class']),
    message: str(doc['message']),
    backtrace: Array.isArray(doc['backtrace']) ? doc['backtrace'].filter((f): f is string => typeof f === 'string') : [],
    retryable: doc['retryable'] === true,
    retryAfterMs: typeof retryAfter === 'number' ? retryAfter : undefined,
    code: str(doc['code']),
    detailsJson: details && typeof details === 'object' ? Buffer.from(JSON.stringify(details), 'utf8') : Buffer.alloc(0),
  };
}

/** One step of GetTask. */
export function stepToProto(s: StepDetails): Step {
  return {
    stepId: s.id,
    name: s.name,
    handler: s.handler,
    state: STEP_STATE_OUT[s.state],
    attempts: s.attempts,
    maxAttempts: s.maxAttempts,
    attemptBase: s.attemptBase,
    // `null` is a result too (JSON null); only an absent result leaves the field unset.
    result: 'result' in s ? (s.result ?? null) : undefined,
    lastError: stepErrorToProto(s.lastError),
    createdAt: s.createdAt,
    updatedAt: s.updatedAt,
    startedAt: s.startedAt ?? undefined,
    completedAt: s.completedAt ?? undefined,
    nextAttemptAt: s.nextAttemptAt ?? undefined,
    dependsOn: [...s.dependsOn],
  };
}

/** The execution context summary. */
export function executionContextToProto(c: DomainExecutionContext): ExecutionContext {
  return {
    totalSteps: c.totalSteps,
    pendingSteps: c.pendingSteps,
    inProgressSteps: c.inProgressSteps,
    completedSteps: c.completedSteps,
    failedSteps: c.failedSteps,
    readySteps: c.readySteps,
    executionStatus: c.executionStatus,
    recommendedAction: c.recommendedAction,
    completionPercentage: c.completionPercentage,
    healthStatus: c.healthStatus,
    waitingForRetrySteps: c.waitingForRetrySteps,
    cancelledSteps: c.cancelledSteps,
  };
}

/** A task for the wire: with steps, edges and execution context when `details` are given (GetTask), without (ListTasks). */
export function taskToProto(t: TaskRecord, details?: TaskDetails): Task {
  const context = t.context && typeof t.context === 'object' && !Array.isArray(t.context) ? (t.context as Record<string, unknown>) : {};
  return {
    taskId: t.id,
    template: { namespace: t.namespace, name: t.name, version: t.version },
    state: TASK_STATE_OUT[t.state],
    context,
    priority: t.priority,
    tags: [...t.tags],
    initiator: t.initiator ?? '',
    sourceSystem: t.sourceSystem ?? '',
    reason: t.reason ?? '',
    correlationId: t.correlationId ?? '',
    createdAt: t.createdAt,
    updatedAt: t.updatedAt,
    completedAt: t.completedAt ?? undefined,
    steps: details ? details.steps.map(stepToProto) : [],
    edges: details ? details.edges.map((e) => ({ fromStep: e.from, toStep: e.to })) : [],
    executionContext: details ? executionContextToProto(details.executionContext) : undefined,
  };
}

/** ListTasks filters for the engine; `matchesNothing` when the states filter names only UNSPECIFIED. */
export function listTasksOptionsFromProto(req: ListTasksRequest): { options: ListTasksOptions; matchesNothing: boolean } {
  const states: DomainTaskState[] = [];
  for (const [i, s] of req.states.entries()) {
    if (s === TaskState.TASK_STATE_UNSPECIFIED) continue;
    const state = TASK_STATE_IN.get(s);
    if (!state) throw new ValidationError(`unknown task state ${s}`, [{ path: `/states/${i}`, message: `unknown task state ${s}` }]);
    states.push(state);
  }
  return {
    matchesNothing: req.states.length > 0 && states.length === 0,
    options: {
      namespace: none(req.namespace),
      name: none(req.name),
      states,
      tag: none(req.tag),
      createdAfter: req.createdAfter ?? null,
      createdBefore: req.createdBefore ?? null,
      pageSize: req.pageSize,
      pageToken: none(req.pageToken),
    },
  };
}
