/**
 * The one statement that moves steps between states (everything except claims,
 * which select their rows with SKIP LOCKED in `step-claims.ts`). Callers lock the
 * rows first (`lockSteps`), decide each change in TypeScript against the transition
 * table, and pass the whole batch here; one round trip then, for any number of steps:
 *
 * 1. updates each step once, as a compare-and-swap on the state the caller read
 *    (`WHERE state = from`), so a concurrent or repeated change is a no-op. A change
 *    marked `startedFirst` (StepStarted and the outcome of the same attempt committed
 *    together) moves the row from `enqueued` straight to its outcome in one UPDATE and
 *    still records both transitions and both events;
 * 2. releases the children of steps that became satisfied (complete or
 *    resolved_manually): `pending_parents - n`, and `ready_at = now` when it reaches 0.
 *    Only the children are touched — readiness is never recomputed over the DAG;
 * 3. locks the touched tasks (id order) and returns their counters with the net
 *    change as `TaskCounterUpdate`s — written, with the settled state, by
 *    `settleTasks`/`applyTaskChanges` in the same transaction (one write per task row);
 * 4. appends the `workflow_step_transitions` rows of the changes, and in ONE ordered
 *    insert the group's events: start transitions first, then the `step.progress`
 *    events of the progress rows stored with them (`insertProgress`), then the other
 *    transitions — so a watcher reading in event-id order sees a step start before its
 *    progress, and its progress before its outcome, when all were committed together;
 * 5. counts outcomes into the steps' batches (`step_batches`): a batch is `executing`
 *    once one of its steps started or ended, `completed` when every step is counted,
 *    `timed_out` (for good) as soon as one of its steps lost its lease or timed out.
 *
 * Plan shape: every join has a base-table index on its inner side (or is the UPDATE's
 * own input); no CTE is joined to another CTE. The planner cannot estimate CTE output
 * (it guesses one row) and picks nested loops over CTE scans, which are quadratic in
 * the batch — measured on PostgreSQL 15, the earlier form of this statement spent
 * 20 ms of 34 ms for 256 steps in such loops (events × counted task rows, children ×
 * child locks, deltas × task locks). Columns the logs need travel through RETURNING
 * of the UPDATE (which may return its FROM input's columns) instead of a join.
 *
 * Locking: steps are locked by the caller in id order; tasks (`task_locks`) and
 * children (`child_locks`) are locked in id order before they are written, so two
 * transactions touching overlapping children or tasks queue instead of deadlocking.
 * A deadlock remains possible between a step lock taken here and one taken by a
 * different kind of statement in another order (a cancel locking a task's steps while
 * a completion releases one of them); PostgreSQL then aborts one with 40P01 and the
 * engine retries it (`withTransientRetry`).
 */
import { sql } from 'kysely';
import { StepEvent } from '../domain/events.js';
import type { StepState, StepTransitionKind } from '../domain/step-state.js';
import {
  CLAIMABLE_STEP_STATES,
  DEPENDENCY_SATISFYING_STATES,
  LEASED_STEP_STATES,
  nextStepState,
  StepState as S,
  TERMINAL_STEP_STATES,
} from '../domain/step-state.js';
import { PREPARED } from './prepared-statements.js';
import type { Executor } from './sql-helpers.js';
import { isoOrNull, literalList } from './sql-helpers.js';
import type { NewProgress } from './steps.js';
import { counterUpdates, TASK_COUNTER_RETURNING, toTaskCounters } from './task-counters.js';
import type { TaskCounterRow, TaskCounterUpdate } from './task-counters.js';

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
  /**
   * Starts a fresh retry allowance (operator retry): `attempt_base = attempts`, so the
   * retry policy counts attempts from here. `attempts` itself never goes back — the next
   * attempt gets the next number, so an attempt number names one attempt forever.
   */
  readonly newAllowance?: boolean;
  /** Counts this change into the step's batch as a completed or failed step (`timed_out`: failed, and the batch timed out). */
  readonly batchOutcome?: 'completed' | 'failed' | 'timed_out' | null;
  /**
   * The step was reported started in the same commit: `from` is `enqueued`, and the
   * `start` transition (enqueued → in_progress, `step.started`) is recorded before this
   * one, which is then recorded from `in_progress`.
   */
  readonly startedFirst?: boolean;
  /** The task's namespace and name, for the events (as read by `lockSteps`). */
  readonly namespace: string;
  readonly taskName: string;
  readonly stepName: string;
}

/** Steps of `handler` in `namespace` became claimable. */
export interface ReadyWork {
  readonly handler: string;
  readonly namespace: string;
}

/** What {@link applyStepChanges} did. */
export interface StepChangesResult {
  /** Steps whose compare-and-swap succeeded. */
  readonly movedIds: ReadonlySet<string>;
  /**
   * Every touched task, locked, with its counters and their pending change: pass them
   * to `settleTasks` (or `applyTaskChanges`) in the same transaction, which writes them.
   */
  readonly tasks: readonly TaskCounterUpdate[];
  /** Handlers that have newly claimable steps (released children, retries due now). */
  readonly readyHandlers: readonly string[];
  /** The same, with the namespace of the steps' task. */
  readonly ready: readonly ReadyWork[];
  /** Highest event id appended, 0 when none. */
  readonly maxEventId: number;
}

const EMPTY: StepChangesResult = { movedIds: new Set(), tasks: [], readyHandlers: [], ready: [], maxEventId: 0 };

function assertChanges(changes: readonly StepChange[]): void {
  const seen = new Set<string>();
  for (const c of changes) {
    const from = c.startedFirst ? nextStepState('start', c.from) : c.from;
    if (!from || nextStepState(c.kind, from, c.to) !== c.to) {
      throw new RangeError(`step ${c.stepId}: ${c.startedFirst ? 'start, then ' : ''}${c.kind} does not move ${c.from} to ${c.to}`);
    }
    // An UPDATE ... FROM joining one row twice would apply only one of the two changes.
    if (seen.has(c.stepId)) throw new RangeError(`step ${c.stepId} appears twice in one batch of changes`);
    seen.add(c.stepId);
  }
}

interface ResultRow {
  kind: 'moved' | 'task' | 'ready' | 'event';
  id: string | null;
  handler: string | null;
  state: string | null;
  max_event_id: number | string | null;
  task: TaskCounterRow | null;
}

/**
 * Applies `changes` (at most one per step) in one statement; see the file comment.
 * `progress` are progress rows stored in this transaction (as returned by
 * `insertProgress`) whose `step.progress` events this statement appends, in order
 * between the start transitions and the outcomes.
 */
export async function applyStepChanges(
  trx: Executor,
  changes: readonly StepChange[],
  now: Date,
  progress: readonly NewProgress[] = [],
): Promise<StepChangesResult> {
  if (changes.length === 0 && progress.length === 0) return EMPTY;
  assertChanges(changes);
  const col = <T>(f: (c: StepChange) => T): T[] => changes.map(f);
  const pcol = <T>(f: (p: NewProgress) => T): T[] => progress.map(f);
  const loggedFrom = (c: StepChange): StepState => (c.startedFirst ? S.InProgress : c.from);
  const payload = (c: StepChange): string =>
    JSON.stringify({ from: loggedFrom(c), to: c.to, attempt: c.attempt, ...(c.reason ? { reason: c.reason } : {}), ...c.eventPayload });
  const startPayload = (c: StepChange): string | null =>
    c.startedFirst ? JSON.stringify({ from: c.from, to: S.InProgress, attempt: c.attempt }) : null;
  const leased = literalList(LEASED_STEP_STATES);
  const { rows } = await sql<ResultRow>`${PREPARED}
    with input as (
      select * from unnest(
        ${col((c) => c.stepId)}::uuid[], ${col((c) => c.from)}::text[], ${col(loggedFrom)}::text[], ${col((c) => c.to)}::text[],
        ${col((c) => c.kind)}::text[], ${col((c) => c.attempt)}::int[], ${col((c) => c.reason ?? null)}::text[],
        ${col((c) => JSON.stringify(c.metadata ?? {}))}::text[], ${col((c) => c.event)}::text[], ${col(payload)}::text[],
        ${col(startPayload)}::text[],
        ${col((c) => c.resultJson ?? null)}::text[], ${col((c) => c.resultJson !== undefined)}::boolean[],
        ${col((c) => c.errorJson ?? null)}::text[], ${col((c) => c.errorJson !== undefined)}::boolean[],
        ${col((c) => isoOrNull(c.readyAt))}::timestamptz[], ${col((c) => c.readyAt !== undefined)}::boolean[],
        ${col((c) => c.newAllowance === true)}::boolean[], ${col((c) => c.batchOutcome ?? null)}::text[],
        ${col((c) => c.namespace)}::text[], ${col((c) => c.taskName)}::text[], ${col((c) => c.stepName)}::text[]
      ) with ordinality as i(id, from_state, logged_from, to_state, kind, attempt, reason, meta, event_type, payload,
                             start_payload, result, set_result, error, set_error, ready_at, set_ready, new_allowance,
                             batch_outcome, namespace, task_name, step_name, ord)
    ),
    progress as (
      select * from unnest(
        ${pcol((p) => p.stepId)}::uuid[], ${pcol((p) => p.taskId)}::uuid[], ${pcol((p) => p.attempt)}::int[],
        ${pcol((p) => p.seq)}::bigint[], ${pcol((p) => p.payloadJson)}::text[], ${pcol((p) => p.namespace)}::text[],
        ${pcol((p) => p.taskName)}::text[], ${pcol((p) => p.stepName)}::text[]
      ) with ordinality as p(step_id, task_id, attempt, seq, payload, namespace, task_name, step_name, ord)
    ),
    moved as (
      update workflow_steps s set
        state = i.to_state,
        attempt_base = case when i.new_allowance then s.attempts else s.attempt_base end,
        result = case when i.set_result then i.result::jsonb else s.result end,
        last_error = case when i.set_error then i.error::jsonb else s.last_error end,
        ready_at = case when i.set_ready then i.ready_at else s.ready_at end,
        lease_expires_at = case when i.to_state in (${leased}) then s.lease_expires_at end,
        deadline_at = case when i.to_state in (${leased}) then s.deadline_at end,
        started_at = case when i.to_state = ${S.InProgress} or i.start_payload is not null then ${now}::timestamptz
                          else s.started_at end,
        completed_at = case when i.to_state in (${literalList(TERMINAL_STEP_STATES)}) then ${now}::timestamptz end,
        updated_at = ${now}::timestamptz
      from input i
      where s.id = i.id and s.state = i.from_state
      returning s.id, s.task_id, s.handler, s.batch_id, s.pending_parents, s.ready_at as new_ready_at,
                i.from_state, i.logged_from, i.to_state, i.kind, i.attempt, i.reason, i.meta, i.event_type, i.payload,
                i.start_payload, i.batch_outcome, i.namespace, i.task_name, i.step_name, i.ord
    ),
    task_locks as (
      select ${TASK_COUNTER_RETURNING} from tasks t
      where t.id = any(${[...new Set(col((c) => c.taskId))]}::uuid[])
      order by t.id for update of t
    ),
    released as (
      select e.to_step_id as id, count(*)::int as n
      from moved m join workflow_step_edges e on e.from_step_id = m.id
      where m.to_state in (${literalList(DEPENDENCY_SATISFYING_STATES)})
      group by e.to_step_id
    ),
    child_locks as (
      select s.id, r.n from released r join workflow_steps s on s.id = r.id order by s.id for update of s
    ),
    children as (
      update workflow_steps s set
        pending_parents = s.pending_parents - l.n,
        ready_at = case when s.pending_parents = l.n then ${now}::timestamptz else s.ready_at end,
        updated_at = ${now}::timestamptz
      from child_locks l
      where s.id = l.id
      returning s.task_id, s.handler, s.state, s.pending_parents
    ),
    logs as (
      select id, task_id, attempt, ${S.Enqueued}::text as from_state, ${S.InProgress}::text as to_state, 'start' as kind,
             null::text as reason, '{}' as meta, ${StepEvent.Started}::text as event_type, start_payload as payload,
             namespace, task_name, step_name, ord, 0 as seq
      from moved where start_payload is not null
      union all
      select id, task_id, attempt, logged_from, to_state, kind, reason, meta, event_type, payload,
             namespace, task_name, step_name, ord, 1
      from moved
    ),
    step_log as (
      insert into workflow_step_transitions (step_id, task_id, attempt, from_state, to_state, event, reason, metadata, created_at)
      select id, task_id, attempt, from_state, to_state, kind, reason, meta::jsonb, ${now}::timestamptz
      from logs order by ord, seq
    ),
    events as (
      -- Phases: 0 start transitions, 1 progress, 2 every other transition. Event ids
      -- follow this order (the sequence is drawn as the sorted rows are inserted).
      insert into tasker_events (event_type, namespace, task_name, task_id, step_id, step_name, payload, created_at)
      select event_type, namespace, task_name, task_id, step_id, step_name, payload, ${now}::timestamptz
      from (
        select case when kind = 'start' then 0 else 2 end as phase, ord, seq, event_type, namespace, task_name, task_id,
               id as step_id, step_name, payload::jsonb as payload
        from logs
        union all
        select 1, ord, seq, ${StepEvent.Progress}::text, namespace, task_name, task_id, step_id, step_name,
               jsonb_build_object('attempt', attempt, 'seq', seq, 'payload', payload::jsonb)
        from progress
      ) e
      order by phase, ord, seq
      returning id
    ),
    batch_counts as (
      select batch_id,
             count(*) filter (where batch_outcome = 'completed')::int as completed,
             count(*) filter (where batch_outcome in ('failed', 'timed_out'))::int as failed,
             coalesce(bool_or(batch_outcome = 'timed_out'), false) as timed_out
      from moved
      where batch_id is not null and (batch_outcome is not null or to_state = ${S.InProgress} or start_payload is not null)
      group by batch_id
    ),
    batches as (
      update step_batches b set
        completed_count = b.completed_count + x.completed,
        failed_count = b.failed_count + x.failed,
        state = case when b.state = 'timed_out' or x.timed_out then 'timed_out'
                     when b.state = 'completed' or b.completed_count + b.failed_count + x.completed + x.failed >= b.step_count
                       then 'completed'
                     else 'executing' end,
        completed_at = case when b.completed_count + b.failed_count + x.completed + x.failed >= b.step_count
                            then coalesce(b.completed_at, ${now}::timestamptz) else b.completed_at end,
        updated_at = ${now}::timestamptz
      from batch_counts x where b.id = x.batch_id
      returning b.id
    )
    select 'moved' as kind, id::text as id, null::text as handler, from_state as state, null::bigint as max_event_id,
           null::json as task
    from moved
    union all
    select 'task', null, null, null, null, row_to_json(task_locks) from task_locks
    union all
    select 'ready', task_id::text, handler, state, null, null from children
    where pending_parents = 0 and state in (${literalList(CLAIMABLE_STEP_STATES)})
    union all
    select 'ready', task_id::text, handler, to_state, null, null from moved
    where to_state in (${literalList(CLAIMABLE_STEP_STATES)}) and pending_parents = 0 and new_ready_at <= ${now}::timestamptz
    union all
    select 'event', null, null, null, (select max(id) from events), null`.execute(trx);
  return collect(rows, changes);
}

function collect(rows: readonly ResultRow[], changes: readonly StepChange[]): StepChangesResult {
  const movedIds = new Set<string>();
  const locked = [];
  const readyPending = new Set<string>();
  const readyRows: Array<{ taskId: string; handler: string }> = [];
  let maxEventId = 0;
  for (const row of rows) {
    if (row.kind === 'moved' && row.id) movedIds.add(row.id);
    else if (row.kind === 'task' && row.task) locked.push(toTaskCounters(row.task));
    else if (row.kind === 'ready' && row.id && row.handler) {
      readyRows.push({ taskId: row.id, handler: row.handler });
      if (row.state === S.Pending) readyPending.add(row.id);
    } else if (row.kind === 'event') maxEventId = Number(row.max_event_id ?? 0);
  }
  const namespaceOf = new Map(locked.map((t) => [t.id, t.namespace]));
  const ready = new Map<string, ReadyWork>();
  for (const r of readyRows) {
    const namespace = namespaceOf.get(r.taskId) ?? '';
    ready.set(`${namespace}\u0000${r.handler}`, { handler: r.handler, namespace });
  }
  const moves = changes.filter((c) => movedIds.has(c.stepId)).map((c) => ({ taskId: c.taskId, from: c.from, to: c.to }));
  return {
    movedIds,
    tasks: counterUpdates(locked, moves, readyPending),
    readyHandlers: [...new Set(readyRows.map((r) => r.handler))],
    ready: [...ready.values()],
    maxEventId,
  };
}
