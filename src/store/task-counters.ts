/**
 * The per-state step counters on `tasks` (`steps_pending`, `steps_enqueued`, ...).
 * A statement that moves steps locks the tasks concerned and returns their counters
 * as a {@link TaskCounterUpdate} (counters before, net change); the change is then
 * written together with the task's settled state by ONE update of each task row
 * (`task-changes.ts`), so settling a task reads no step and writes its row once per
 * transaction.
 *
 * Why once: a second UPDATE of a row that the same transaction already wrote makes
 * PostgreSQL re-run the row's foreign-key check (the RI trigger cannot skip rows its
 * own transaction inserted or updated), and for `tasks` that check takes a KEY SHARE
 * lock on the template row shared by every task of the template — a hot row whose
 * lockers pile up in multixacts under concurrency.
 */
import { sql } from 'kysely';
import type { RawBuilder } from 'kysely';
import { STEP_STATES } from '../domain/step-state.js';
import type { StepState } from '../domain/step-state.js';
import type { TaskState, TaskStepCounts } from '../domain/task-state.js';
import { stepCounts } from '../domain/task-state.js';

/** Counter column of a step state. */
export function counterColumn(state: StepState): string {
  return `steps_${state}`;
}

/** A task's state and step counters as returned by the statements that move steps. */
export interface TaskCounters {
  readonly id: string;
  readonly state: TaskState;
  readonly namespace: string;
  readonly name: string;
  readonly total: number;
  readonly byState: Readonly<Record<StepState, number>>;
}

/** A raw row carrying {@link TASK_COUNTER_RETURNING}'s columns. */
export type TaskCounterRow = Record<string, unknown> & {
  id: string;
  state: TaskState;
  namespace: string;
  name: string;
  steps_total: number;
};

/** `<alias>.id, .state, .namespace, .name, .steps_total, .steps_<state>...` for RETURNING / SELECT lists. */
export function taskCounterColumns(alias: string): RawBuilder<unknown> {
  if (!/^[a-z_]+$/.test(alias)) throw new RangeError(`bad alias ${alias}`);
  const columns = ['id', 'state', 'namespace', 'name', 'steps_total', ...STEP_STATES.map(counterColumn)];
  return sql.raw(columns.map((c) => `${alias}.${c}`).join(', '));
}

/** {@link taskCounterColumns} of `tasks t`. */
export const TASK_COUNTER_RETURNING: RawBuilder<unknown> = taskCounterColumns('t');

/**
 * SQL pieces for moving counters by the net change of a set of step rows with
 * `from_state`/`to_state` columns: `aggregates` computes one delta column per state
 * (to use with `group by task_id` as `d`), `assignments` applies them to `tasks t`.
 */
export const taskCounterDeltaSet: { aggregates: RawBuilder<unknown>; assignments: RawBuilder<unknown> } = {
  aggregates: sql.raw(
    STEP_STATES.map(
      (s) => `(count(*) filter (where to_state = '${s}') - count(*) filter (where from_state = '${s}'))::int as d_${s}`,
    ).join(', '),
  ),
  assignments: sql.raw(STEP_STATES.map((s) => `${counterColumn(s)} = t.${counterColumn(s)} + d.d_${s}`).join(', ')),
};

/** Steps moved into (+) and out of (-) each state. */
export type StepCounterDelta = Readonly<Record<StepState, number>>;

/** A zero delta. */
export function zeroDelta(): Record<StepState, number> {
  const d = {} as Record<StepState, number>;
  for (const s of STEP_STATES) d[s] = 0;
  return d;
}

/**
 * A locked task whose step counters are about to move: the counters as locked (before
 * the change) and the net change of its steps in this transaction. Not yet written:
 * pass it to `settleTasks` or `applyTaskChanges` in the same transaction.
 */
export interface TaskCounterUpdate {
  readonly before: TaskCounters;
  readonly delta: StepCounterDelta;
  /** True when the change itself made a pending step of the task claimable (released children, a reset step). */
  readonly readyPending: boolean;
}

/** The counters of `u` after its change. */
export function countersAfter(u: TaskCounterUpdate): TaskCounters {
  const byState = {} as Record<StepState, number>;
  for (const s of STEP_STATES) byState[s] = (u.before.byState[s] ?? 0) + (u.delta[s] ?? 0);
  return { ...u.before, byState };
}

/** True when the update moves no counter. */
export function isZeroDelta(d: StepCounterDelta): boolean {
  return STEP_STATES.every((s) => (d[s] ?? 0) === 0);
}

/**
 * Combines updates of the same tasks from several statements of one transaction: the
 * counters locked first (none was written in between) and the sum of the changes.
 */
export function mergeCounterUpdates(...lists: ReadonlyArray<readonly TaskCounterUpdate[]>): TaskCounterUpdate[] {
  const byId = new Map<string, TaskCounterUpdate>();
  for (const list of lists) {
    for (const u of list) {
      const seen = byId.get(u.before.id);
      if (!seen) {
        byId.set(u.before.id, u);
        continue;
      }
      const delta = zeroDelta();
      for (const s of STEP_STATES) delta[s] = (seen.delta[s] ?? 0) + (u.delta[s] ?? 0);
      byId.set(u.before.id, { before: seen.before, delta, readyPending: seen.readyPending || u.readyPending });
    }
  }
  return [...byId.values()];
}

/** Builds the updates of locked tasks from the moves of their steps (`from` → `to` per moved step). */
export function counterUpdates(
  locked: readonly TaskCounters[],
  moves: Iterable<{ readonly taskId: string; readonly from: StepState; readonly to: StepState }>,
  readyPending: ReadonlySet<string> = new Set(),
): TaskCounterUpdate[] {
  const deltas = new Map<string, Record<StepState, number>>();
  for (const m of moves) {
    let d = deltas.get(m.taskId);
    if (!d) deltas.set(m.taskId, (d = zeroDelta()));
    d[m.from] -= 1;
    d[m.to] += 1;
  }
  return locked.map((before) => ({ before, delta: deltas.get(before.id) ?? zeroDelta(), readyPending: readyPending.has(before.id) }));
}

/** Parses a counter row. */
export function toTaskCounters(row: TaskCounterRow): TaskCounters {
  const byState = {} as Record<StepState, number>;
  for (const s of STEP_STATES) byState[s] = Number(row[counterColumn(s)] ?? 0);
  return { id: row.id, state: row.state, namespace: row.namespace, name: row.name, total: Number(row.steps_total), byState };
}

/**
 * Whether deriving the task's state needs to know if a pending step is claimable now.
 * Only when nothing is leased and some step is pending; otherwise the counters decide.
 */
export function needsReadyPending(c: TaskCounters): boolean {
  return c.byState.pending > 0 && c.byState.enqueued + c.byState.in_progress === 0;
}

/** Counters as {@link TaskStepCounts} for `deriveTaskState`. */
export function toStepCounts(c: TaskCounters, readyPending: boolean): TaskStepCounts {
  const counts = stepCounts(c.byState, readyPending);
  if (counts.total !== c.total) throw new Error(`task ${c.id}: step counters add up to ${counts.total}, not ${c.total}`);
  return counts;
}
