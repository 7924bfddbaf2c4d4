/**
 * `step_batches`: one row per StepBatch pushed to a session. The claim that fills
 * a batch creates its row (`step-claims.ts`, state `sent`); starts and outcomes count into
 * it as they are committed (`step-changes.ts`: `executing` on the first, `completed`
 * once every step is counted, `timed_out` when one of its steps lost its lease or
 * timed out). This file holds what the worker protocol adds — `-> completed` on
 * BatchCompleted — a standalone `sent -> executing`, and reads.
 */
import { sql } from 'kysely';
import type { StepBatchState } from './schema.js';
import { PREPARED } from './prepared-statements.js';
import type { Executor } from './sql-helpers.js';

/** A batch row as read back. */
export interface BatchRecord {
  readonly id: string;
  readonly sessionId: string;
  readonly state: StepBatchState;
  readonly stepCount: number;
  readonly completedCount: number;
  readonly failedCount: number;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly completedAt: Date | null;
}

/**
 * Moves the batches of the given steps from `sent` to `executing` (a worker reported
 * StepStarted for one of their steps). Batches already past `sent` are untouched.
 * Returns how many batches moved.
 */
export async function markBatchesExecuting(db: Executor, stepIds: readonly string[], now: Date): Promise<number> {
  if (stepIds.length === 0) return 0;
  const result = await sql`
    update step_batches b set state = 'executing', updated_at = ${now}::timestamptz
    where b.state = 'sent'
      and b.id in (select s.batch_id from workflow_steps s where s.id = any(${[...new Set(stepIds)]}::uuid[]))`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

/** A BatchCompleted from a worker. */
export interface BatchCompletion {
  readonly batchId: string;
  /** The worker's count of steps it reported completed (informational; the stored counts are the committed ones). */
  readonly completed: number;
  readonly failed: number;
}

/**
 * Marks batches of `sessionId` completed because the worker reported every step of
 * them final (BatchCompleted). Only batches of that session still `sent` or
 * `executing` move; the per-step counts stay as the committed outcomes made them.
 * Returns the ids of the batches that moved.
 */
export async function completeBatches(
  db: Executor,
  sessionId: string,
  completions: readonly BatchCompletion[],
  now: Date,
): Promise<string[]> {
  if (completions.length === 0) return [];
  const ids = [...new Set(completions.map((c) => c.batchId))];
  const { rows } = await sql<{ id: string }>`
    update step_batches set state = 'completed', completed_at = ${now}::timestamptz, updated_at = ${now}::timestamptz
    where id = any(${ids}::uuid[]) and session_id = ${sessionId}::uuid and state in ('sent', 'executing')
    returning id`.execute(db);
  return rows.map((r) => r.id);
}

/** A BatchCompleted and the session whose stream carried it. */
export interface SessionBatchCompletion {
  readonly sessionId: string;
  readonly batchId: string;
}

/**
 * {@link completeBatches} for completions of any number of sessions, in one
 * statement (for the group commit): each batch moves only if it belongs to the
 * session that reported it and is still `sent` or `executing`. Returns the ids moved.
 * One completion has its own statement text, whose generic plan PostgreSQL keeps
 * (for `unnest($1)` it estimates ten rows and re-plans every call; see `lockSteps`).
 */
export async function completeSessionBatches(db: Executor, completions: readonly SessionBatchCompletion[], now: Date): Promise<string[]> {
  if (completions.length === 0) return [];
  const [only] = completions;
  const from =
    completions.length === 1 && only
      ? sql`(select ${only.batchId}::uuid as id, ${only.sessionId}::uuid as session_id) as x`
      : sql`unnest(${completions.map((c) => c.batchId)}::uuid[], ${completions.map((c) => c.sessionId)}::uuid[]) as x(id, session_id)`;
  const { rows } = await sql<{ id: string }>`${PREPARED}
    update step_batches b set state = 'completed', completed_at = ${now}::timestamptz, updated_at = ${now}::timestamptz
    from ${from}
    where b.id = x.id and b.session_id = x.session_id and b.state in ('sent', 'executing')
    returning b.id`.execute(db);
  return rows.map((r) => r.id);
}

/** The batch with id `id`, or null. */
export async function findBatch(db: Executor, id: string): Promise<BatchRecord | null> {
  const { rows } = await sql<{
    id: string;
    session_id: string;
    state: StepBatchState;
    step_count: number;
    completed_count: number;
    failed_count: number;
    created_at: Date;
    updated_at: Date;
    completed_at: Date | null;
  }>`
    select id, session_id, state, step_count, completed_count, failed_count, created_at, updated_at, completed_at
    from step_batches where id = ${id}::uuid`.execute(db);
  const r = rows[0];
  if (!r) return null;
  return {
    id: r.id,
    sessionId: r.session_id,
    state: r.state,
    stepCount: r.step_count,
    completedCount: r.completed_count,
    failedCount: r.failed_count,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    completedAt: r.completed_at,
  };
}
