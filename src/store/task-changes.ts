/**
 * Writing tasks: the one statement that updates task rows — their step counters and,
 * as a compare-and-swap on the state read under lock, their state — and *settling*:
 * deriving a task's state from its step counters after its steps changed.
 *
 * Every transaction writes each task row at most once, here (see `task-counters.ts`
 * for why): statements that move steps only lock the tasks and return the pending
 * counter change, which this statement writes together with the settled state.
 */
import { sql } from 'kysely';
import type { TaskChangeCause, TaskEvent } from '../domain/events.js';
import { taskEventFor } from '../domain/events.js';
import { STEP_STATES } from '../domain/step-state.js';
import type { TaskState, TaskTransitionKind } from '../domain/task-state.js';
import { canTransitionTask, deriveTaskState, TASK_TRANSITIONS, TERMINAL_TASK_STATES } from '../domain/task-state.js';
import type { TxEffects } from './events.js';
import { notifySelect } from './events.js';
import { PREPARED } from './prepared-statements.js';
import type { Executor } from './sql-helpers.js';
import { literalList } from './sql-helpers.js';
import type { StepCounterDelta, TaskCounterUpdate } from './task-counters.js';
import { counterColumn, countersAfter, isZeroDelta, needsReadyPending, toStepCounts } from './task-counters.js';

/** One task transition to apply with {@link applyTaskChanges}. */
export interface TaskChange {
  readonly taskId: string;
  /** The state read under lock; the update only happens if the task is still in it. */
  readonly from: TaskState;
  readonly to: TaskState;
  readonly kind: TaskTransitionKind;
  readonly event: TaskEvent;
  readonly reason?: string | null;
  readonly metadata?: Record<string, unknown> | null;
  /** Step counter change written with the transition (from the statement that moved the steps). */
  readonly delta?: StepCounterDelta | null;
}

/** What {@link applyTaskChanges} did. */
export interface TaskChangesResult {
  /** The changes whose compare-and-swap succeeded. */
  readonly applied: readonly TaskChange[];
  readonly maxEventId: number;
}

function assertAllowed(c: TaskChange): void {
  const rule = TASK_TRANSITIONS[c.kind];
  if (!canTransitionTask(c.kind, c.from) || (rule.to !== 'derived' && rule.to !== c.to)) {
    throw new RangeError(`task ${c.taskId}: ${c.kind} does not move ${c.from} to ${c.to}`);
  }
}

/** A row of the task write: a transition, or (from = to) only a counter change. */
interface TaskWrite {
  readonly taskId: string;
  readonly from: TaskState;
  readonly to: TaskState;
  readonly kind: string;
  readonly event: string | null;
  readonly reason: string | null;
  readonly metadata: Record<string, unknown> | null;
  readonly delta: StepCounterDelta | null;
}

const COUNTER_ASSIGNMENTS = sql.raw(STEP_STATES.map((s) => `${counterColumn(s)} = t.${counterColumn(s)} + i.d_${s}`).join(', '));
const DELTA_COLUMNS = sql.raw(STEP_STATES.map((s) => `d_${s}`).join(', '));

/**
 * One statement for any number of tasks: moves the counters by each row's delta and
 * the state from `from` to `to` (a compare-and-swap: rows whose state is no longer
 * `from` are left alone), sets `completed_at` on entering a terminal state and clears
 * it on leaving one, and appends a `task_transitions` row and a lifecycle event per
 * actual transition (from ≠ to). Joins only the input to `tasks` by primary key, so
 * the plan stays a loop of index probes whatever the planner guesses about the input.
 */
async function writeTasks(
  trx: Executor,
  rows: readonly TaskWrite[],
  now: Date,
  notify: TxEffects | null,
): Promise<{ moved: Set<string>; maxEventId: number }> {
  if (rows.length === 0) return { moved: new Set(), maxEventId: 0 };
  const notified = notify ? sql`, ${notifySelect(notify, sql`(select max(id) from events)`)}` : sql``;
  const col = <T>(f: (c: TaskWrite) => T): T[] => rows.map(f);
  const payload = (c: TaskWrite): string =>
    JSON.stringify({ from: c.from, to: c.to, ...(c.reason ? { reason: c.reason } : {}), ...c.metadata });
  const deltas = STEP_STATES.map((s) => sql`${col((c) => c.delta?.[s] ?? 0)}::int[]`);
  const { rows: out } = await sql<{ moved_ids: string[]; max_event_id: number | null }>`${PREPARED}
    with input as (
      select * from unnest(
        ${col((c) => c.taskId)}::uuid[], ${col((c) => c.from)}::text[], ${col((c) => c.to)}::text[],
        ${col((c) => c.kind)}::text[], ${col((c) => c.event)}::text[], ${col((c) => c.reason)}::text[],
        ${col((c) => JSON.stringify(c.metadata ?? {}))}::text[], ${col(payload)}::text[], ${sql.join(deltas)}
      ) with ordinality as i(id, from_state, to_state, kind, event_type, reason, meta, payload, ${DELTA_COLUMNS}, ord)
    ),
    moved as (
      update tasks t set
        ${COUNTER_ASSIGNMENTS},
        state = i.to_state,
        updated_at = ${now}::timestamptz,
        completed_at = case when i.to_state = i.from_state then t.completed_at
                            when i.to_state in (${literalList(TERMINAL_TASK_STATES)}) then ${now}::timestamptz end
      from input i
      where t.id = i.id and t.state = i.from_state
      returning t.id, t.namespace, t.name, i.from_state, i.to_state, i.kind, i.event_type, i.reason, i.meta, i.payload, i.ord
    ),
    log as (
      insert into task_transitions (task_id, from_state, to_state, event, reason, metadata, created_at)
      select id, from_state, to_state, kind, reason, meta::jsonb, ${now}::timestamptz
      from moved where to_state <> from_state order by ord
    ),
    events as (
      insert into tasker_events (event_type, namespace, task_name, task_id, payload, created_at)
      select event_type, namespace, name, id, payload::jsonb, ${now}::timestamptz
      from moved where to_state <> from_state order by ord
      returning id
    )
    select array(select id::text from moved) as moved_ids, (select max(id) from events) as max_event_id ${notified}`.execute(trx);
  return { moved: new Set(out[0]?.moved_ids ?? []), maxEventId: Number(out[0]?.max_event_id ?? 0) };
}

/**
 * Applies task transitions in one statement (see {@link writeTasks}), each with the
 * step counter change of its task if the steps moved in the same transaction.
 */
export async function applyTaskChanges(trx: Executor, changes: readonly TaskChange[], now: Date): Promise<TaskChangesResult> {
  if (changes.length === 0) return { applied: [], maxEventId: 0 };
  changes.forEach(assertAllowed);
  const written = await writeTasks(
    trx,
    changes.map((c) => ({
      taskId: c.taskId,
      from: c.from,
      to: c.to,
      kind: c.kind,
      event: c.event,
      reason: c.reason ?? null,
      metadata: c.metadata ?? null,
      delta: c.delta ?? null,
    })),
    now,
    null,
  );
  return { applied: changes.filter((c) => written.moved.has(c.taskId)), maxEventId: written.maxEventId };
}

/** Ids among `taskIds` that have a pending step with every parent satisfied. */
export async function tasksWithReadyPending(db: Executor, taskIds: readonly string[]): Promise<Set<string>> {
  if (taskIds.length === 0) return new Set();
  // Served by workflow_steps_task_ready_idx: one index probe per task, whatever its size.
  const { rows } = await sql<{ task_id: string }>`${PREPARED}
    select t.id as task_id from unnest(${taskIds}::uuid[]) as t(id)
    where exists (select 1 from workflow_steps s where s.task_id = t.id and s.state = 'pending' and s.pending_parents = 0)`.execute(db);
  return new Set(rows.map((r) => r.task_id));
}

/**
 * Writes the counter changes of `updates` and moves each task to the state derived
 * from its counters after the change (`deriveTaskState`) when it differs and the
 * transition table allows it: `settle` for changes the engine made on its own,
 * `repair` (which may reopen `error`) after an operator repair. One statement (plus
 * one index probe per task when its counters alone cannot tell whether a pending
 * step is claimable). `updates` must come from the statements that moved the steps,
 * in the same transaction: they hold the task rows locked until commit, so the
 * compare-and-swap cannot miss; if it does, the counters would be lost, and this
 * throws to roll the transaction back. With `notify` (the transaction's effects, to
 * which nothing is added afterwards) the same statement queues its notifications.
 */
export async function settleTasks(
  trx: Executor,
  updates: Iterable<TaskCounterUpdate>,
  now: Date,
  cause: TaskChangeCause,
  reason: string | null = null,
  notify: TxEffects | null = null,
): Promise<TaskChangesResult> {
  const kind: TaskTransitionKind = cause === 'repair' ? 'repair' : 'settle';
  const list = [...updates];
  const afters = list.map(countersAfter);
  const probe = afters.filter((c, i) => canTransitionTask(kind, c.state) && needsReadyPending(c) && !list[i]?.readyPending);
  const ready = await tasksWithReadyPending(trx, probe.map((c) => c.id));
  const rows: TaskWrite[] = [];
  const changes: TaskChange[] = [];
  list.forEach((u, i) => {
    const after = afters[i]!;
    const from = after.state;
    let to = from;
    if (canTransitionTask(kind, from)) to = deriveTaskState(toStepCounts(after, u.readyPending || ready.has(after.id)));
    if (to === from && isZeroDelta(u.delta)) return;
    const event = to === from ? null : taskEventFor(from, to, cause);
    rows.push({ taskId: after.id, from, to, kind, event, reason: to === from ? null : reason, metadata: null, delta: u.delta });
    if (event) changes.push({ taskId: after.id, from, to, kind, event, reason, delta: u.delta });
  });
  const written = await writeTasks(trx, rows, now, notify);
  const lost = rows.filter((r) => !written.moved.has(r.taskId));
  if (lost.length > 0) {
    throw new Error(`tasks ${lost.map((r) => r.taskId).join(', ')} changed state while locked; their step counters were not written`);
  }
  return { applied: changes, maxEventId: written.maxEventId };
}
