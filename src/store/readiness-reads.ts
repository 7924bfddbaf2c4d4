/**
 * The parity functions of `sql/` as typed rows: `step_readiness(task, now)` (readiness
 * of every step computed from the DAG) and `task_execution_context(task, now)` (the
 * progress summary computed from the steps). Both are independent of the incremental
 * state the engine maintains (`pending_parents`, `ready_at`, the task counters), which
 * is what makes them useful to check it, and to show a task's progress.
 */
import { sql } from 'kysely';
import { isUuid } from '../domain/ids.js';
import type { StepState } from '../domain/step-state.js';
import type { TaskState } from '../domain/task-state.js';
import type { Executor } from './sql-helpers.js';

/** `task_execution_context().execution_status` (definitions in sql/20_task_execution_context.sql). */
export type ExecutionStatus =
  | 'has_ready_steps'
  | 'processing'
  | 'waiting_for_retry'
  | 'blocked_by_failures'
  | 'all_complete'
  | 'cancelled';
/** `task_execution_context().recommended_action`. */
export type RecommendedAction =
  | 'execute_ready_steps'
  | 'wait_for_completion'
  | 'wait_for_retry'
  | 'handle_failures'
  | 'finalize_task'
  | 'none';
/** `task_execution_context().health_status`. */
export type HealthStatus = 'healthy' | 'recovering' | 'blocked' | 'unknown';

/** A task's progress summary, computed from its steps by `task_execution_context()`. */
export interface ExecutionContext {
  readonly taskId: string;
  readonly taskState: TaskState;
  readonly totalSteps: number;
  readonly pendingSteps: number;
  /** Enqueued or in progress. */
  readonly inProgressSteps: number;
  readonly waitingForRetrySteps: number;
  /** Complete or resolved manually. */
  readonly completedSteps: number;
  /** In error. */
  readonly failedSteps: number;
  readonly cancelledSteps: number;
  readonly readySteps: number;
  readonly executionStatus: ExecutionStatus;
  readonly recommendedAction: RecommendedAction;
  /** 0–100 with two decimals. */
  readonly completionPercentage: number;
  readonly healthStatus: HealthStatus;
}

/** One row of `step_readiness()`: readiness of a step computed from the DAG. */
export interface StepReadinessRow {
  readonly stepId: string;
  readonly name: string;
  readonly state: StepState;
  readonly handler: string;
  readonly position: number;
  readonly dependenciesTotal: number;
  readonly dependenciesSatisfied: number;
  readonly allDependenciesSatisfied: boolean;
  readonly retryEligible: boolean;
  readonly ready: boolean;
  readonly nextRetryAt: Date | null;
  /** The number of the current or last attempt (counts the step's whole life). */
  readonly attempts: number;
  /** Attempts per allowance. */
  readonly maxAttempts: number;
  /** Attempts made before the current allowance (an operator retry sets it). */
  readonly attemptBase: number;
}

interface ReadinessSqlRow {
  step_id: string;
  name: string;
  state: StepState;
  handler: string;
  position: number;
  dependencies_total: number;
  dependencies_satisfied: number;
  all_dependencies_satisfied: boolean;
  retry_eligible: boolean;
  ready: boolean;
  next_retry_at: Date | null;
  attempts: number;
  max_attempts: number;
  attempt_base: number;
}

/** `step_readiness(taskId, now)`: every step of the task in template order; empty for an unknown task. */
export async function getStepReadiness(db: Executor, taskId: string, now: Date): Promise<StepReadinessRow[]> {
  if (!isUuid(taskId)) return [];
  const { rows } = await sql<ReadinessSqlRow>`
    select * from step_readiness(${taskId}::uuid, ${now}::timestamptz)`.execute(db);
  return rows.map((r) => ({
    stepId: r.step_id,
    name: r.name,
    state: r.state,
    handler: r.handler,
    position: r.position,
    dependenciesTotal: r.dependencies_total,
    dependenciesSatisfied: r.dependencies_satisfied,
    allDependenciesSatisfied: r.all_dependencies_satisfied,
    retryEligible: r.retry_eligible,
    ready: r.ready,
    nextRetryAt: r.next_retry_at,
    attempts: r.attempts,
    maxAttempts: r.max_attempts,
    attemptBase: r.attempt_base,
  }));
}

interface ContextSqlRow {
  task_id: string;
  task_state: TaskState;
  total_steps: number;
  pending_steps: number;
  in_progress_steps: number;
  waiting_for_retry_steps: number;
  completed_steps: number;
  failed_steps: number;
  cancelled_steps: number;
  ready_steps: number;
  execution_status: ExecutionStatus;
  recommended_action: RecommendedAction;
  completion_percentage: string;
  health_status: HealthStatus;
}

/** `task_execution_context(taskId, now)`, or null for an unknown task. */
export async function getExecutionContext(db: Executor, taskId: string, now: Date): Promise<ExecutionContext | null> {
  if (!isUuid(taskId)) return null;
  const { rows } = await sql<ContextSqlRow>`
    select * from task_execution_context(${taskId}::uuid, ${now}::timestamptz)`.execute(db);
  const r = rows[0];
  if (!r) return null;
  return {
    taskId: r.task_id,
    taskState: r.task_state,
    totalSteps: r.total_steps,
    pendingSteps: r.pending_steps,
    inProgressSteps: r.in_progress_steps,
    waitingForRetrySteps: r.waiting_for_retry_steps,
    completedSteps: r.completed_steps,
    failedSteps: r.failed_steps,
    cancelledSteps: r.cancelled_steps,
    readySteps: r.ready_steps,
    executionStatus: r.execution_status,
    recommendedAction: r.recommended_action,
    completionPercentage: Number(r.completion_percentage),
    healthStatus: r.health_status,
  };
}

