/**
 * The one statement that moves steps between states (everything except claims,
 * which select their rows with SKIP LOCKED in `steps.ts`). Callers lock the rows
 * first (`lockSteps`), decide each change in TypeScript against the transition table,
 * and pass the whole batch here; one round trip then, for any number of steps:
 *
 * 1. updates each step as a compare-and-swap on the state the caller read
 *    (`WHERE state = from`), so a concurrent or repeated change is a no-op;
 * 2. releases the children of steps that became satisfied (complete or
 *    resolved_manually): `pending_parents - n`, and `ready_at = now` when it reaches 0.
 *    Only the children are touched — readiness is never recomputed over the DAG;
 * 3. moves the per-state step counters of every touched task by the net change;
 * 4. appends one `workflow_step_transitions` row and one lifecycle event per change;
 * 5. counts outcomes into the steps' batches (`step_batches`).
 * It returns the counters after the change so the caller can settle the tasks.
 *
 * Locking: steps are locked by the caller in id order; children (`child_locks`) and
 * tasks (`task_locks`) are locked in id order before they are updated, so two
 * transactions touching overlapping children or tasks queue instead of deadlocking.
 * A deadlock remains possible between a step lock taken here and one taken by a
 * different kind of statement in another order (a cancel locking a task's steps while
 * a completion releases one of them); PostgreSQL then aborts one with 40P01 and the
 * engine retries it (`withTransientRetry`).
 */
import { sql } from 'kysely';
import type { StepEvent } from '../domain/events.js';
import type { StepState, StepTransitionKind } from '../domain/step-state.js';
import {
  CLAIMABLE_STEP_STATES,
  DEPENDENCY_SATISFYING_STATES,
  LEASED_STEP_STATES,
  nextStepState,
  TERMINAL_STEP_STATES,
} from '../domain/step-state.js';
import type { Executor } from './sql-helpers.js';
import { isoOrNull, literalList } from './sql-helpers.js';
import { TASK_COUNTER_RETURNING, taskCounterDeltaSet, toTaskCounters } from './task-counters.js';
import type { TaskCounterRow, TaskCounters } from './task-counters.js';

/** One step transition to apply with {@link applyStepChanges}. */
export interface StepChange {
  readonly stepId: string;
  readonly taskId: string;
  /** The state read under lock; the update only happens if the step is still in it. */
  readonly from: StepState;
  readonly to: StepState;
  readonly kind: StepTransitionKind;
  /** The attempt the transition row records (after the change). */
  readonly attempt: number;
  readonly reason?: string | null;
  /** Stored on the transition row. */
  readonly metadata?: Record<string, unknown> | null;
  readonly event: StepEvent;
  /** Extra event payload, merged after `{from, to, attempt, reason}`. */
  readonly eventPayload?: Record<string, unknown> | null;
  /** JSON text stored as `result`; undefined leaves it unchanged. */
  readonly resultJson?: string | null;
  /** JSON text stored as `last_error`; undefined leaves it unchanged. */
  readonly errorJson?: string | null;
  /** New `ready_at`; undefined leaves it unchanged. */
  readonly readyAt?: Date | null;
  /** Resets `attempts` to 0 (operator retry). */
  readonly resetAttempts?: boolean;
  /** Counts this change into the step's batch as a completed or failed step. */
  readonly batchOutcome?: 'completed' | 'failed' | null;
}

/** What {@link applyStepChanges} did. */
export interface StepChangesResult {
  /** Steps whose compare-and-swap succeeded. */
  readonly movedIds: ReadonlySet<string>;
  /** Counters of every touched task after the change. */
  readonly tasks: readonly TaskCounters[];
  /** Handlers that have newly claimable steps (released children, retries due now). */
  readonly readyHandlers: readonly string[];
  /** Highest event id appended, 0 when none. */
  readonly maxEventId: number;
}

const EMPTY: StepChangesResult = { movedIds: new Set(), tasks: [], readyHandlers: [], maxEventId: 0 };

function assertChanges(changes: readonly StepChange[]): void {
  const seen = new Set<string>();
  for (const c of changes) {
    if (nextStepState(c.kind, c.from, c.to) !== c.to) {
      throw new RangeError(`step ${c.stepId}: ${c.kind} does not move ${c.from} to ${c.to}`);
    }
    // An UPDATE ... FROM joining one row twice would apply only one of the two changes.
    if (seen.has(c.stepId)) throw new RangeError(`step ${c.stepId} appears twice in one batch of changes`);
    seen.add(c.stepId);
  }
}

interface ResultRow {
  kind: 'moved' | 'task' | 'ready' | 'event';
  step_id: string | null;
  handler: string | null;
  max_event_id: number | string | null;
  task: TaskCounterRow | null;
}

/** Applies `changes` (at most one per step) in one statement; see the file comment. */
export async function applyStepChanges(
  trx: Executor,
  changes: readonly StepChange[],
  now: Date,
): Promise<StepChangesResult> {
  if (changes.length === 0) return EMPTY;
  assertChanges(changes);
  const col = <T>(f: (c: StepChange) => T): T[] => changes.map(f);
  const payload = (c: StepChange): string =>
    JSON.stringify({ from: c.from, to: c.to, attempt: c.attempt, ...(c.reason ? { reason: c.reason } : {}), ...c.eventPayload });
  const { rows } = await sql<ResultRow>`
    with input as (
      select * from unnest(
        ${col((c) => c.stepId)}::uuid[], ${col((c) => c.from)}::text[], ${col((c) => c.to)}::text[],
        ${col((c) => c.kind)}::text[], ${col((c) => c.attempt)}::int[], ${col((c) => c.reason ?? null)}::text[],
        ${col((c) => JSON.stringify(c.metadata ?? {}))}::text[], ${col((c) => c.event)}::text[], ${col(payload)}::text[],
        ${col((c) => c.resultJson ?? null)}::text[], ${col((c) => c.resultJson !== undefined)}::boolean[],
        ${col((c) => c.errorJson ?? null)}::text[], ${col((c) => c.errorJson !== undefined)}::boolean[],
        ${col((c) => isoOrNull(c.readyAt))}::timestamptz[], ${col((c) => c.readyAt !== undefined)}::boolean[],
        ${col((c) => c.resetAttempts === true)}::boolean[], ${col((c) => c.batchOutcome ?? null)}::text[]
      ) with ordinality as i(id, from_state, to_state, kind, attempt, reason, meta, event_type, payload,
                             result, set_result, error, set_error, ready_at, set_ready, reset_attempts, batch_outcome, ord)
    ),
    moved as (
      update workflow_steps s set
        state = i.to_state,
        attempts = case when i.reset_attempts then 0 else s.attempts end,
        result = case when i.set_result then i.result::jsonb else s.result end,
        last_error = case when i.set_error then i.error::jsonb else s.last_error end,
        ready_at = case when i.set_ready then i.ready_at else s.ready_at end,
        lease_expires_at = case when i.to_state in (${literalList(LEASED_STEP_STATES)}) then s.lease_expires_at end,
        deadline_at = case when i.to_state in (${literalList(LEASED_STEP_STATES)}) then s.deadline_at end,
        started_at = case when i.to_state = 'in_progress' then ${now}::timestamptz else s.started_at end,
        completed_at = case when i.to_state in (${literalList(TERMINAL_STEP_STATES)}) then ${now}::timestamptz end,
        updated_at = ${now}::timestamptz
      from input i
      where s.id = i.id and s.state = i.from_state
      returning s.id, s.task_id, s.name, s.handler, s.batch_id, s.pending_parents, s.ready_at
    ),
    changed as (
      select m.id, m.task_id, m.name, m.handler, m.batch_id, m.pending_parents, m.ready_at as new_ready_at,
             i.from_state, i.to_state, i.kind, i.attempt, i.reason, i.meta, i.event_type, i.payload, i.batch_outcome, i.ord
      from moved m join input i on i.id = m.id
    ),
    released as (
      select e.to_step_id as id, count(*)::int as n
      from changed c join workflow_step_edges e on e.from_step_id = c.id
      where c.to_state in (${literalList(DEPENDENCY_SATISFYING_STATES)})
      group by e.to_step_id
    ),
    child_locks as (
      select s.id from workflow_steps s join released r on r.id = s.id order by s.id for update of s
    ),
    children as (
      update workflow_steps s set
        pending_parents = s.pending_parents - r.n,
        ready_at = case when s.pending_parents = r.n then ${now}::timestamptz else s.ready_at end,
        updated_at = ${now}::timestamptz
      from released r join child_locks l on l.id = r.id
      where s.id = r.id
      returning s.handler, s.state, s.pending_parents
    ),
    deltas as (
      select task_id, ${taskCounterDeltaSet.aggregates} from changed group by task_id
    ),
    task_locks as (
      select t.id from tasks t join deltas d on d.task_id = t.id order by t.id for update of t
    ),
    counted as (
      update tasks t set ${taskCounterDeltaSet.assignments}, updated_at = ${now}::timestamptz
      from deltas d join task_locks l on l.id = d.task_id
      where t.id = d.task_id
      returning ${TASK_COUNTER_RETURNING}
    ),
    step_log as (
      insert into workflow_step_transitions (step_id, task_id, attempt, from_state, to_state, event, reason, metadata, created_at)
      select id, task_id, attempt, from_state, to_state, kind, reason, meta::jsonb, ${now}::timestamptz
      from changed order by ord
    ),
    events as (
      insert into tasker_events (event_type, namespace, task_name, task_id, step_id, step_name, payload, created_at)
      select c.event_type, k.namespace, k.name, c.task_id, c.id, c.name, c.payload::jsonb, ${now}::timestamptz
      from changed c join counted k on k.id = c.task_id
      order by c.ord
      returning id
    ),
    batch_counts as (
      select batch_id,
             count(*) filter (where batch_outcome = 'completed')::int as completed,
             count(*) filter (where batch_outcome = 'failed')::int as failed
      from changed where batch_outcome is not null and batch_id is not null group by batch_id
    ),
    batches as (
      update step_batches b set
        completed_count = b.completed_count + x.completed,
        failed_count = b.failed_count + x.failed,
        state = case when b.completed_count + b.failed_count + x.completed + x.failed >= b.step_count
                     then 'completed' else 'executing' end,
        completed_at = case when b.completed_count + b.failed_count + x.completed + x.failed >= b.step_count
                            then ${now}::timestamptz else b.completed_at end,
        updated_at = ${now}::timestamptz
      from batch_counts x where b.id = x.batch_id
      returning b.id
    )
    select 'moved' as kind, id as step_id, null::text as handler, null::bigint as max_event_id, null::json as task
    from changed
    union all
    select 'task', null, null, null, row_to_json(counted) from counted
    union all
    select 'ready', null, handler, null, null from (
      select handler from children where pending_parents = 0 and state in (${literalList(CLAIMABLE_STEP_STATES)})
      union
      select handler from changed
      where to_state in (${literalList(CLAIMABLE_STEP_STATES)}) and pending_parents = 0
        and new_ready_at <= ${now}::timestamptz
    ) h
    union all
    select 'event', null, null, (select max(id) from events), null`.execute(trx);
  const movedIds = new Set<string>();
  const tasks: TaskCounters[] = [];
  const readyHandlers: string[] = [];
  let maxEventId = 0;
  for (const row of rows) {
    if (row.kind === 'moved' && row.step_id) movedIds.add(row.step_id);
    else if (row.kind === 'task' && row.task) tasks.push(toTaskCounters(row.task));
    else if (row.kind === 'ready' && row.handler) readyHandlers.push(row.handler);
    else if (row.kind === 'event') maxEventId = Number(row.max_event_id ?? 0);
  }
  return { movedIds, tasks, readyHandlers, maxEventId };
}
