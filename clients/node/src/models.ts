/**
 * What {@link TaskerClient} returns: plain objects. States are the lowercase domain
 * names (`pending`, `in_progress`, `complete`, ...), instants are `Date`s (null when
 * unset), JSON values are plain values.
 */
import type { StepError } from './gen/tasker/v1/common.js';
import { StepState, TaskState, stepStateToJSON, taskStateToJSON } from './gen/tasker/v1/common.js';
import type { Event as ProtoEvent, Step as ProtoStep, Task as ProtoTask, TaskUpdate as ProtoTaskUpdate } from './gen/tasker/v1/task.js';
import type { SystemHealth as ProtoHealth, Transition as ProtoTransition, WorkerSession as ProtoSession } from './gen/tasker/v1/admin.js';
import { sessionStateToJSON } from './gen/tasker/v1/admin.js';
import { decodeJson } from './internal/json.js';

/** Task states. */
export type TaskStateName = 'pending' | 'in_progress' | 'waiting_for_retry' | 'blocked_by_failures' | 'complete' | 'error' | 'cancelled' | 'resolved_manually';
/** Step states. */
export type StepStateName = 'pending' | 'enqueued' | 'in_progress' | 'waiting_for_retry' | 'complete' | 'error' | 'cancelled' | 'resolved_manually';
/** Worker session states. */
export type SessionStateName = 'active' | 'draining' | 'expired';

/** Terminal task states: `waitForTask` resolves on these. */
export const TERMINAL_TASK_STATES: ReadonlySet<TaskStateName> = new Set(['complete', 'error', 'cancelled', 'resolved_manually']);

/** One version of a template. */
export interface TemplateRef {
  readonly namespace: string;
  readonly name: string;
  readonly version: string;
}

/** Why a step attempt failed. */
export interface StepFailure {
  readonly errorClass: string;
  readonly message: string;
  /** Stack frames, innermost first. */
  readonly backtrace: readonly string[];
  readonly retryable: boolean;
  readonly retryAfterMs: number | null;
  readonly code: string | null;
  readonly details: Record<string, unknown> | null;
}

/** One step of a task. */
export interface TaskStep {
  readonly stepId: string;
  readonly name: string;
  readonly handler: string;
  readonly state: StepStateName;
  /**
   * Attempts dispatched so far: the number of the current or last attempt. Never reset,
   * so after an operator retry it keeps counting up and may exceed `maxAttempts`.
   */
  readonly attempts: number;
  /** Attempts allowed per retry allowance by the step's retry policy. */
  readonly maxAttempts: number;
  /**
   * Attempts made before the current retry allowance: 0 until an operator retries the
   * step (`retryStep`, `retryTask`), which sets it to `attempts`.
   */
  readonly attemptBase: number;
  /**
   * Attempts used in the current allowance (`attempts - attemptBase`), the count the
   * retry policy holds against `maxAttempts`: the step is retried while it is below.
   */
  readonly attemptsInAllowance: number;
  /** The result once complete; undefined while there is none (or results were omitted). */
  readonly result: unknown;
  readonly lastError: StepFailure | null;
  readonly dependsOn: readonly string[];
  readonly createdAt: Date | null;
  readonly updatedAt: Date | null;
  readonly startedAt: Date | null;
  readonly completedAt: Date | null;
  readonly nextAttemptAt: Date | null;
}

/** Progress summary of a task, computed like Tasker's task_execution_context. */
export interface ExecutionContext {
  readonly totalSteps: number;
  readonly pendingSteps: number;
  readonly inProgressSteps: number;
  readonly completedSteps: number;
  readonly failedSteps: number;
  readonly readySteps: number;
  readonly waitingForRetrySteps: number;
  readonly cancelledSteps: number;
  readonly executionStatus: string;
  readonly recommendedAction: string;
  readonly completionPercentage: number;
  readonly healthStatus: string;
}

/** One run of a template. `steps`, `edges` and `executionContext` are empty/null in list results. */
export interface Task {
  readonly taskId: string;
  readonly template: TemplateRef;
  readonly state: TaskStateName;
  readonly context: Record<string, unknown>;
  readonly priority: number;
  readonly tags: readonly string[];
  readonly initiator: string;
  readonly sourceSystem: string;
  readonly reason: string;
  readonly correlationId: string | null;
  readonly createdAt: Date | null;
  readonly updatedAt: Date | null;
  readonly completedAt: Date | null;
  readonly steps: readonly TaskStep[];
  readonly edges: ReadonlyArray<{ readonly from: string; readonly to: string }>;
  readonly executionContext: ExecutionContext | null;
  /** Results of the complete steps, keyed by step name. */
  readonly results: Readonly<Record<string, unknown>>;
}

/** What `createTask` returns; `created` is false when an identical task already existed. */
export interface CreatedTask {
  readonly task: Task;
  readonly created: boolean;
}

/** One page of `listTasks`; `nextPageToken` is null on the last page. */
export interface TaskPage {
  readonly tasks: readonly Task[];
  readonly nextPageToken: string | null;
}

/** What `cancelTask` returns. */
export interface CancelledTask {
  readonly task: Task;
  readonly cancelledStepIds: readonly string[];
}

interface UpdateBase {
  /** Position in the server's event log; strictly increasing within a stream. */
  readonly cursor: number;
  readonly at: Date | null;
}

/** One thing that happened to a watched task, discriminated on `kind`. */
export type TaskUpdate =
  | (UpdateBase & { readonly kind: 'task_state_changed'; readonly fromState: TaskStateName | null; readonly toState: TaskStateName; readonly reason: string })
  | (UpdateBase & {
      readonly kind: 'step_state_changed';
      readonly stepId: string;
      readonly stepName: string;
      readonly fromState: StepStateName | null;
      readonly toState: StepStateName;
      readonly attempt: number;
      readonly reason: string;
    })
  | (UpdateBase & { readonly kind: 'step_progress'; readonly stepId: string; readonly stepName: string; readonly attempt: number; readonly seq: number; readonly payload: unknown })
  | (UpdateBase & { readonly kind: 'step_result'; readonly stepId: string; readonly stepName: string; readonly attempt: number; readonly result: unknown });

/** One lifecycle event (`task.completed`, `step.failed`, ...). */
export interface TaskerEvent {
  readonly cursor: number;
  readonly eventType: string;
  readonly namespace: string;
  readonly taskName: string;
  readonly taskId: string;
  /** Null for task events. */
  readonly stepId: string | null;
  readonly stepName: string | null;
  readonly payload: Record<string, unknown>;
  readonly at: Date | null;
}

/** One worker session as the server sees it. */
export interface WorkerSessionInfo {
  readonly sessionId: string;
  readonly workerName: string;
  readonly language: string;
  readonly sdkVersion: string;
  readonly handlers: readonly string[];
  readonly namespaces: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
  readonly maxInFlight: number;
  readonly inFlight: number;
  readonly state: SessionStateName;
  readonly serverInstance: string;
  readonly connected: boolean;
  readonly lastHeartbeatAt: Date | null;
  readonly expiresAt: Date | null;
  readonly createdAt: Date | null;
}

/** System-wide counts at one instant. */
export interface SystemHealth {
  readonly taskCounts: Readonly<Record<string, number>>;
  readonly stepCounts: Readonly<Record<string, number>>;
  readonly readySteps: number;
  readonly activeSessions: number;
  readonly at: Date | null;
}

/** One recorded state transition of a step. */
export interface Transition {
  readonly fromState: string | null;
  readonly toState: string;
  readonly attempt: number;
  readonly reason: string;
  readonly metadata: Record<string, unknown>;
  readonly at: Date | null;
}

function lower(name: string, prefix: string): string {
  return name.startsWith(prefix) ? name.slice(prefix.length).toLowerCase() : name.toLowerCase();
}

/** `TASK_STATE_IN_PROGRESS` → `in_progress`; null for UNSPECIFIED. */
export function taskStateName(state: TaskState): TaskStateName | null {
  return state === TaskState.TASK_STATE_UNSPECIFIED ? null : (lower(taskStateToJSON(state), 'TASK_STATE_') as TaskStateName);
}

/** `STEP_STATE_ENQUEUED` → `enqueued`; null for UNSPECIFIED. */
export function stepStateName(state: StepState): StepStateName | null {
  return state === StepState.STEP_STATE_UNSPECIFIED ? null : (lower(stepStateToJSON(state), 'STEP_STATE_') as StepStateName);
}

/** `in_progress` → TASK_STATE_IN_PROGRESS; throws RangeError for an unknown name. */
export function taskStateValue(name: TaskStateName): TaskState {
  const value = (TaskState as unknown as Record<string, TaskState | undefined>)[`TASK_STATE_${name.toUpperCase()}`];
  if (value === undefined || value === TaskState.TASK_STATE_UNSPECIFIED) throw new RangeError(`unknown task state "${name}"`);
  return value;
}

/** The plain view of a StepError. */
export function failureFromProto(e: StepError): StepFailure {
  let details: Record<string, unknown> | null = null;
  try {
    const value = decodeJson(e.detailsJson);
    if (value && typeof value === 'object' && !Array.isArray(value)) details = value as Record<string, unknown>;
  } catch {
    details = null;
  }
  return {
    errorClass: e.errorClass,
    message: e.message,
    backtrace: [...e.backtrace],
    retryable: e.retryable,
    retryAfterMs: e.retryAfterMs ?? null,
    code: e.code || null,
    details,
  };
}

/** Step of a task from the wire. */
export function taskStepFromProto(s: ProtoStep): TaskStep {
  return {
    stepId: s.stepId,
    name: s.name,
    handler: s.handler,
    state: stepStateName(s.state) ?? 'pending',
    attempts: s.attempts,
    maxAttempts: s.maxAttempts,
    attemptBase: s.attemptBase,
    attemptsInAllowance: s.attempts - s.attemptBase,
    result: s.result,
    lastError: s.lastError ? failureFromProto(s.lastError) : null,
    dependsOn: [...s.dependsOn],
    createdAt: s.createdAt ?? null,
    updatedAt: s.updatedAt ?? null,
    startedAt: s.startedAt ?? null,
    completedAt: s.completedAt ?? null,
    nextAttemptAt: s.nextAttemptAt ?? null,
  };
}

/** Task from the wire. */
export function taskFromProto(t: ProtoTask): Task {
  const steps = t.steps.map(taskStepFromProto);
  const results: Record<string, unknown> = {};
  for (const s of steps) if (s.state === 'complete') results[s.name] = s.result ?? null;
  const c = t.executionContext;
  return {
    taskId: t.taskId,
    template: { namespace: t.template?.namespace ?? '', name: t.template?.name ?? '', version: t.template?.version ?? '' },
    state: taskStateName(t.state) ?? 'pending',
    context: t.context ?? {},
    priority: t.priority,
    tags: [...t.tags],
    initiator: t.initiator,
    sourceSystem: t.sourceSystem,
    reason: t.reason,
    correlationId: t.correlationId || null,
    createdAt: t.createdAt ?? null,
    updatedAt: t.updatedAt ?? null,
    completedAt: t.completedAt ?? null,
    steps,
    edges: t.edges.map((e) => ({ from: e.fromStep, to: e.toStep })),
    executionContext: c ? { ...c } : null,
    results,
  };
}

/** TaskUpdate from the wire; null for an update kind this SDK does not know. */
export function taskUpdateFromProto(u: ProtoTaskUpdate): TaskUpdate | null {
  const base = { cursor: u.cursor, at: u.at ?? null };
  const update = u.update;
  switch (update?.$case) {
    case 'taskStateChanged': {
      const v = update.value;
      return { ...base, kind: 'task_state_changed', fromState: taskStateName(v.fromState), toState: taskStateName(v.toState) ?? 'pending', reason: v.reason };
    }
    case 'stepStateChanged': {
      const v = update.value;
      return {
        ...base,
        kind: 'step_state_changed',
        stepId: v.stepId,
        stepName: v.stepName,
        fromState: stepStateName(v.fromState),
        toState: stepStateName(v.toState) ?? 'pending',
        attempt: v.attempt,
        reason: v.reason,
      };
    }
    case 'stepProgress': {
      const v = update.value;
      return { ...base, kind: 'step_progress', stepId: v.stepId, stepName: v.stepName, attempt: v.attempt, seq: v.seq, payload: v.payload ?? null };
    }
    case 'stepResult': {
      const v = update.value;
      return { ...base, kind: 'step_result', stepId: v.stepId, stepName: v.stepName, attempt: v.attempt, result: v.result ?? null };
    }
    default:
      return null;
  }
}

/** Event from the wire. */
export function eventFromProto(e: ProtoEvent): TaskerEvent {
  return {
    cursor: e.cursor,
    eventType: e.eventType,
    namespace: e.namespace,
    taskName: e.taskName,
    taskId: e.taskId,
    stepId: e.stepId || null,
    stepName: e.stepName || null,
    payload: e.payload ?? {},
    at: e.at ?? null,
  };
}

/** WorkerSession from the wire. */
export function workerSessionFromProto(w: ProtoSession): WorkerSessionInfo {
  return {
    sessionId: w.sessionId,
    workerName: w.workerName,
    language: w.language,
    sdkVersion: w.sdkVersion,
    handlers: [...w.handlers],
    namespaces: [...w.namespaces],
    labels: { ...w.labels },
    maxInFlight: w.maxInFlight,
    inFlight: w.inFlight,
    state: lower(sessionStateToJSON(w.state), 'SESSION_STATE_') as SessionStateName,
    serverInstance: w.serverInstance,
    connected: w.connected,
    lastHeartbeatAt: w.lastHeartbeatAt ?? null,
    expiresAt: w.expiresAt ?? null,
    createdAt: w.createdAt ?? null,
  };
}

/** SystemHealth from the wire. */
export function systemHealthFromProto(h: ProtoHealth | undefined): SystemHealth {
  return {
    taskCounts: { ...(h?.taskCounts ?? {}) },
    stepCounts: { ...(h?.stepCounts ?? {}) },
    readySteps: h?.readySteps ?? 0,
    activeSessions: h?.activeSessions ?? 0,
    at: h?.at ?? null,
  };
}

/** Transition from the wire. */
export function transitionFromProto(t: ProtoTransition): Transition {
  return { fromState: t.fromState || null, toState: t.toState, attempt: t.attempt, reason: t.reason, metadata: t.metadata ?? {}, at: t.at ?? null };
}
