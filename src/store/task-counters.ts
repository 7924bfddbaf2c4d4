/**
 * The per-state step counters on `tasks` (`steps_pending`, `steps_enqueued`, ...).
 * Every statement that moves steps moves the counters by the net change in the same
 * statement, so settling a task reads one row instead of counting its steps.
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
