/**
 * Moving tasks between states: the compare-and-swap statement, and *settling* —
 * deriving a task's state from its step counters after its steps changed.
 */
import { sql } from 'kysely';
import type { TaskChangeCause, TaskEvent } from '../domain/events.js';
import { taskEventFor } from '../domain/events.js';
import type { TaskState, TaskTransitionKind } from '../domain/task-state.js';
import { canTransitionTask, deriveTaskState, TASK_TRANSITIONS, TERMINAL_TASK_STATES } from '../domain/task-state.js';
import type { Executor } from './sql-helpers.js';
import { literalList } from './sql-helpers.js';
import type { TaskCounters } from './task-counters.js';
import { needsReadyPending, toStepCounts } from './task-counters.js';

/** One task transition to apply with {@link applyTaskChanges}. */
export interface TaskChange {
  readonly taskId: string;
  /** The state read; the update only happens if the task is still in it. */
  readonly from: TaskState;
  readonly to: TaskState;
  readonly kind: TaskTransitionKind;
  readonly event: TaskEvent;
  readonly reason?: string | null;
  readonly metadata?: Record<string, unknown> | null;
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

/**
 * Applies task transitions in one statement: a compare-and-swap on the state the
 * caller read, one `task_transitions` row and one lifecycle event per change.
 * `completed_at` is set on entering a terminal state and cleared on leaving one.
 */
export async function applyTaskChanges(trx: Executor, changes: readonly TaskChange[], now: Date): Promise<TaskChangesResult> {
  if (changes.length === 0) return { applied: [], maxEventId: 0 };
  changes.forEach(assertAllowed);
  const col = <T>(f: (c: TaskChange) => T): T[] => changes.map(f);
  const payload = (c: TaskChange): string =>
    JSON.stringify({ from: c.from, to: c.to, ...(c.reason ? { reason: c.reason } : {}), ...c.metadata });
  const { rows } = await sql<{ moved_ids: string[]; max_event_id: number | null }>`
    with input as (
      select * from unnest(
        ${col((c) => c.taskId)}::uuid[], ${col((c) => c.from)}::text[], ${col((c) => c.to)}::text[],
        ${col((c) => c.kind)}::text[], ${col((c) => c.event)}::text[], ${col((c) => c.reason ?? null)}::text[],
        ${col((c) => JSON.stringify(c.metadata ?? {}))}::text[], ${col(payload)}::text[]
      ) with ordinality as i(id, from_state, to_state, kind, event_type, reason, meta, payload, ord)
    ),
    moved as (
      update tasks t set
        state = i.to_state,
        updated_at = ${now}::timestamptz,
        completed_at = case when i.to_state in (${literalList(TERMINAL_TASK_STATES)}) then ${now}::timestamptz end
      from input i
      where t.id = i.id and t.state = i.from_state
      returning t.id, t.namespace, t.name
    ),
    log as (
      insert into task_transitions (task_id, from_state, to_state, event, reason, metadata, created_at)
      select i.id, i.from_state, i.to_state, i.kind, i.reason, i.meta::jsonb, ${now}::timestamptz
      from input i join moved m on m.id = i.id order by i.ord
    ),
    events as (
      insert into tasker_events (event_type, namespace, task_name, task_id, payload, created_at)
      select i.event_type, m.namespace, m.name, i.id, i.payload::jsonb, ${now}::timestamptz
      from input i join moved m on m.id = i.id order by i.ord
      returning id
    )
    select array(select id::text from moved) as moved_ids, (select max(id) from events) as max_event_id`.execute(trx);
  const moved = new Set(rows[0]?.moved_ids ?? []);
  return { applied: changes.filter((c) => moved.has(c.taskId)), maxEventId: Number(rows[0]?.max_event_id ?? 0) };
}

/** Ids among `taskIds` that have a pending step with every parent satisfied. */
export async function tasksWithReadyPending(db: Executor, taskIds: readonly string[]): Promise<Set<string>> {
  if (taskIds.length === 0) return new Set();
  // Served by workflow_steps_task_ready_idx: one index probe per task, whatever its size.
  const { rows } = await sql<{ task_id: string }>`
    select t.id as task_id from unnest(${taskIds}::uuid[]) as t(id)
    where exists (select 1 from workflow_steps s where s.task_id = t.id and s.state = 'pending' and s.pending_parents = 0)`.execute(db);
  return new Set(rows.map((r) => r.task_id));
}

/**
 * Moves each task to the state derived from its counters (`deriveTaskState`) when it
 * differs and the transition table allows it: `settle` for changes the engine made on
 * its own, `repair` (which may reopen `error`) after an operator repair. The counters
 * must be the ones returned by the statement that changed the steps, in the same
 * transaction (that statement holds the task rows locked until commit).
 */
export async function settleTasks(
  trx: Executor,
  counters: Iterable<TaskCounters>,
  now: Date,
  cause: TaskChangeCause,
  reason: string | null = null,
): Promise<TaskChangesResult> {
  const kind: TaskTransitionKind = cause === 'repair' ? 'repair' : 'settle';
  const candidates = [...counters].filter((c) => canTransitionTask(kind, c.state));
  const ready = await tasksWithReadyPending(trx, candidates.filter(needsReadyPending).map((c) => c.id));
  const changes: TaskChange[] = [];
  for (const c of candidates) {
    const to = deriveTaskState(toStepCounts(c, ready.has(c.id)));
    if (to !== c.state) changes.push({ taskId: c.id, from: c.state, to, kind, event: taskEventFor(c.state, to, cause), reason });
  }
  return applyTaskChanges(trx, changes, now);
}

/** Keeps the latest counters per task when several statements touched the same tasks. */
export function latestCounters(...lists: ReadonlyArray<readonly TaskCounters[]>): TaskCounters[] {
  const byId = new Map<string, TaskCounters>();
  for (const list of lists) for (const c of list) byId.set(c.id, c);
  return [...byId.values()];
}
