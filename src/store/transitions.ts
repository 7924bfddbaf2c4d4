/**
 * Reads of the append-only transition logs. Rows are written by the statements that
 * change state (`tasks.ts`, `step-claims.ts`, `step-changes.ts`, `task-changes.ts`), never
 * on their own, so a state and its audit row can never disagree.
 */
import { sql } from 'kysely';
import type { StepState } from '../domain/step-state.js';
import type { TaskState } from '../domain/task-state.js';
import type { Executor } from './sql-helpers.js';

/** One row of `workflow_step_transitions`. */
export interface StepTransitionRecord {
  readonly id: number;
  readonly stepId: string;
  readonly taskId: string;
  readonly attempt: number;
  readonly from: StepState | null;
  readonly to: StepState;
  /** The transition kind (`create`, `enqueue`, `complete`, ...). */
  readonly event: string;
  readonly reason: string | null;
  readonly metadata: Record<string, unknown>;
  readonly at: Date;
}

/** One row of `task_transitions`. */
export interface TaskTransitionRecord {
  readonly id: number;
  readonly taskId: string;
  readonly from: TaskState | null;
  readonly to: TaskState;
  readonly event: string;
  readonly reason: string | null;
  readonly metadata: Record<string, unknown>;
  readonly at: Date;
}

interface TransitionRow {
  id: number;
  step_id?: string;
  task_id: string;
  attempt?: number;
  from_state: string | null;
  to_state: string;
  event: string;
  reason: string | null;
  metadata: Record<string, unknown>;
  created_at: Date;
}

/** Transitions of one step, oldest first. */
export async function listStepTransitions(db: Executor, stepId: string): Promise<StepTransitionRecord[]> {
  const { rows } = await sql<TransitionRow>`
    select id, step_id, task_id, attempt, from_state, to_state, event, reason, metadata, created_at
    from workflow_step_transitions where step_id = ${stepId}::uuid order by id`.execute(db);
  return rows.map((r) => ({
    id: Number(r.id),
    stepId: r.step_id ?? stepId,
    taskId: r.task_id,
    attempt: r.attempt ?? 0,
    from: r.from_state as StepState | null,
    to: r.to_state as StepState,
    event: r.event,
    reason: r.reason,
    metadata: r.metadata,
    at: r.created_at,
  }));
}

/** Transitions of one task (its own, not its steps'), oldest first. */
export async function listTaskTransitions(db: Executor, taskId: string): Promise<TaskTransitionRecord[]> {
  const { rows } = await sql<TransitionRow>`
    select id, task_id, from_state, to_state, event, reason, metadata, created_at
    from task_transitions where task_id = ${taskId}::uuid order by id`.execute(db);
  return rows.map((r) => ({
    id: Number(r.id),
    taskId: r.task_id,
    from: r.from_state as TaskState | null,
    to: r.to_state as TaskState,
    event: r.event,
    reason: r.reason,
    metadata: r.metadata,
    at: r.created_at,
  }));
}
