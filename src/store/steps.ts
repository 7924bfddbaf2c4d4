/**
 * The step aggregate: locking steps before deciding their next state, progress rows,
 * and plain reads. Claims are in `step-claims.ts` (with ancestor results in
 * `ancestor-results.ts`); state changes other than claims go through
 * `step-changes.ts`.
 */
import { sql } from 'kysely';
import type { RawBuilder } from 'kysely';
import type { StepState } from '../domain/step-state.js';
import { CLAIMABLE_STEP_STATES } from '../domain/step-state.js';
import type { TaskState } from '../domain/task-state.js';
import type { StepBatchState } from './schema.js';
import { PREPARED } from './prepared-statements.js';
import type { Executor } from './sql-helpers.js';
import { literalList } from './sql-helpers.js';

/** A step as read under lock, with what deciding its next state needs. */
export interface LockedStep {
  readonly id: string;
  readonly taskId: string;
  readonly name: string;
  readonly handler: string;
  readonly state: StepState;
  /** The number of the current or last attempt (never reset). */
  readonly attempts: number;
  /** Attempts made before the current retry allowance (`workflow_steps.attempt_base`). */
  readonly attemptBase: number;
  readonly maxAttempts: number;
  /** The retry policy as stored (snake_case document form). */
  readonly retry: Record<string, unknown>;
  readonly sessionId: string | null;
  readonly batchId: string | null;
  readonly pendingParents: number;
  readonly lastError: Record<string, unknown> | null;
  readonly taskState: TaskState;
  readonly namespace: string;
  readonly taskName: string;
  /**
   * The step's batch as {@link lockSteps} read it (not locked; null when the step has
   * no batch or its row is gone); absent from the other lock functions.
   */
  readonly batch?: LockedStepBatch | null;
}

/**
 * A `step_batches` row as read beside a locked step. Counts only grow and a batch
 * never moves back to `sent` or `executing`, so a later read finds at least these
 * counts and a state at least this far along.
 */
export interface LockedStepBatch {
  readonly id: string;
  readonly sessionId: string;
  readonly state: StepBatchState;
  readonly stepCount: number;
  /** `completed_count + failed_count`. */
  readonly counted: number;
}

interface LockedRow {
  id: string;
  task_id: string;
  name: string;
  handler: string;
  state: StepState;
  attempts: number;
  attempt_base: number;
  max_attempts: number;
  retry: Record<string, unknown>;
  session_id: string | null;
  batch_id: string | null;
  pending_parents: number;
  last_error: Record<string, unknown> | null;
  task_state: TaskState;
  namespace: string;
  task_name: string;
}

interface LockedBatchRow extends LockedRow {
  batch_session_id: string | null;
  batch_state: StepBatchState | null;
  batch_step_count: number | null;
  batch_counted: number | null;
}

function batchOf(r: LockedBatchRow): LockedStepBatch | null {
  if (r.batch_id === null || r.batch_session_id === null || r.batch_state === null) return null;
  return {
    id: r.batch_id,
    sessionId: r.batch_session_id,
    state: r.batch_state,
    stepCount: Number(r.batch_step_count ?? 0),
    counted: Number(r.batch_counted ?? 0),
  };
}

function toLocked(r: LockedRow): LockedStep {
  return {
    id: r.id,
    taskId: r.task_id,
    name: r.name,
    handler: r.handler,
    state: r.state,
    attempts: r.attempts,
    attemptBase: r.attempt_base,
    maxAttempts: r.max_attempts,
    retry: r.retry,
    sessionId: r.session_id,
    batchId: r.batch_id,
    pendingParents: r.pending_parents,
    lastError: r.last_error,
    taskState: r.task_state,
    namespace: r.namespace,
    taskName: r.task_name,
  };
}

const LOCKED_COLUMNS = sql`
  s.id, s.task_id, s.name, s.handler, s.state, s.attempts, s.attempt_base, s.max_attempts, s.retry, s.session_id, s.batch_id,
  s.pending_parents, s.last_error, t.state as task_state, t.namespace, t.name as task_name`;

/**
 * Locks the given steps (`FOR UPDATE`, in id order so that concurrent lockers cannot
 * deadlock on them) and returns them keyed by id; unknown ids are absent. The task
 * row and the step's batch (`batch`) are read, not locked.
 *
 * One id (the group commit of the latency path) has its own statement text: with
 * `= any($1)` PostgreSQL estimates a generic plan for ten ids, finds it dearer than
 * the custom plan for one and re-plans on every call (measured: 0.15 ms of planning
 * for a 0.035 ms statement); with `= $1` the generic plan costs the same and is kept.
 */
export async function lockSteps(trx: Executor, ids: readonly string[]): Promise<Map<string, LockedStep>> {
  if (ids.length === 0) return new Map();
  const unique = [...new Set(ids)];
  const which = unique.length === 1 ? sql`s.id = ${unique[0]}::uuid` : sql`s.id = any(${unique}::uuid[])`;
  const { rows } = await sql<LockedBatchRow>`${PREPARED}
    select ${LOCKED_COLUMNS}, b.session_id as batch_session_id, b.state as batch_state, b.step_count as batch_step_count,
           b.completed_count + b.failed_count as batch_counted
    from workflow_steps s join tasks t on t.id = s.task_id
      left join step_batches b on b.id = s.batch_id
    where ${which}
    order by s.id
    for update of s`.execute(trx);
  return new Map(rows.map((r) => [r.id, { ...toLocked(r), batch: batchOf(r) }]));
}

/** Locks the steps of a task that are in one of `states`, in id order. */
export async function lockTaskSteps(trx: Executor, taskId: string, states: readonly StepState[]): Promise<LockedStep[]> {
  return lockStepsWhere(trx, sql`s.task_id = ${taskId}::uuid and s.state in (${literalList(states)})`, {});
}

/** Options of {@link lockStepsWhere}. */
export interface LockWhereOptions {
  /** Skip rows another transaction holds (for sweepers that may run on several instances). */
  readonly skipLocked?: boolean;
  readonly limit?: number;
  /** ORDER BY expression on `s`; default `s.id` (the deadlock-free order). */
  readonly orderBy?: RawBuilder<unknown>;
}

/**
 * Locks the steps matching `condition` (an expression on `workflow_steps s` and
 * `tasks t`) and returns them. For modules of `store/` only: `condition` is SQL.
 */
export async function lockStepsWhere(
  trx: Executor,
  condition: RawBuilder<unknown>,
  options: LockWhereOptions,
): Promise<LockedStep[]> {
  const limit = options.limit !== undefined ? sql`limit ${options.limit}::int` : sql``;
  const skip = options.skipLocked ? sql`skip locked` : sql``;
  const { rows } = await sql<LockedRow>`
    select ${LOCKED_COLUMNS}
    from workflow_steps s join tasks t on t.id = s.task_id
    where ${condition}
    order by ${options.orderBy ?? sql`s.id`}
    ${limit}
    for update of s ${skip}`.execute(trx);
  return rows.map(toLocked);
}

/** One StepProgress report to store. */
export interface NewProgress {
  readonly stepId: string;
  readonly taskId: string;
  readonly attempt: number;
  readonly seq: number;
  /** The payload as JSON text. */
  readonly payloadJson: string;
  readonly namespace: string;
  readonly taskName: string;
  readonly stepName: string;
}

/**
 * Stores progress rows; a row whose (step, attempt, seq) exists is skipped. Returns the
 * rows that were new (the same objects, in input order). Their `step.progress` events
 * are appended by `applyStepChanges` in the same transaction, ordered after the start
 * transitions and before the outcomes committed with them.
 */
export async function insertProgress(trx: Executor, rows: readonly NewProgress[], now: Date): Promise<NewProgress[]> {
  if (rows.length === 0) return [];
  const col = <T>(f: (p: NewProgress) => T): T[] => rows.map(f);
  const { rows: stored } = await sql<{ step_id: string; attempt: number; seq: number | string }>`${PREPARED}
    insert into step_progress (step_id, attempt, seq, task_id, payload, created_at)
    select step_id, attempt, seq, task_id, payload::jsonb, ${now}::timestamptz
    from unnest(${col((p) => p.stepId)}::uuid[], ${col((p) => p.taskId)}::uuid[], ${col((p) => p.attempt)}::int[],
                ${col((p) => p.seq)}::bigint[], ${col((p) => p.payloadJson)}::text[]) as i(step_id, task_id, attempt, seq, payload)
    on conflict (step_id, attempt, seq) do nothing
    returning step_id, attempt, seq`.execute(trx);
  const key = (stepId: string, attempt: number, seq: number | string): string => `${stepId}:${attempt}:${seq}`;
  const inserted = new Set(stored.map((r) => key(r.step_id, r.attempt, r.seq)));
  return rows.filter((p) => inserted.has(key(p.stepId, p.attempt, p.seq)));
}

/** The earliest future `ready_at` among claimable steps of `handlers` (when to poll next), or null. */
export async function nextReadyAt(db: Executor, handlers: readonly string[], now: Date): Promise<Date | null> {
  if (handlers.length === 0) return null;
  const { rows } = await sql<{ at: Date | null }>`
    select min(ready_at) as at from workflow_steps
    where handler = any(${[...handlers]}::text[]) and state in (${literalList(CLAIMABLE_STEP_STATES)})
      and pending_parents = 0 and ready_at > ${now}::timestamptz`.execute(db);
  return rows[0]?.at ?? null;
}

/**
 * Which of `handlers` have a claimable step now — the dispatcher's poll asks this once
 * per tick instead of claiming for every attached session, so an idle poll costs one
 * statement whatever the number of sessions. One `workflow_steps_ready_idx` probe per
 * handler (an equality on its leading column; the index predicate is repeated
 * literally so the planner can use it). Namespaces are not considered: a session
 * restricted to other namespaces is woken and its claim finds nothing.
 */
export async function readyHandlers(db: Executor, handlers: readonly string[], now: Date): Promise<string[]> {
  if (handlers.length === 0) return [];
  const { rows } = await sql<{ handler: string }>`${PREPARED}
    select h.handler from unnest(${[...handlers]}::text[]) as h(handler)
    where exists (
      select 1 from workflow_steps s
      where s.handler = h.handler and s.state in (${literalList(CLAIMABLE_STEP_STATES)}) and s.pending_parents = 0
        and s.ready_at <= ${now}::timestamptz
    )`.execute(db);
  return rows.map((r) => r.handler);
}
