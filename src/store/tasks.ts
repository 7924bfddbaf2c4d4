/**
 * The task aggregate's writes and the reads the engine needs (the read API —
 * GetTask, ListTasks — lives in `task-reads.ts`). Creating a task materializes it,
 * every step, every edge, the initial transitions and the `task.created` event in a
 * single statement, whatever the number of steps.
 */
import { sql } from 'kysely';
import { TaskEvent } from '../domain/events.js';
import type { StepState } from '../domain/step-state.js';
import { STEP_STATES, StepState as S } from '../domain/step-state.js';
import type { TaskState } from '../domain/task-state.js';
import type { Executor } from './sql-helpers.js';
import { counterColumn } from './task-counters.js';

/** A task as the engine returns it. */
export interface TaskRecord {
  readonly id: string;
  readonly templateId: string;
  readonly namespace: string;
  readonly name: string;
  readonly version: string;
  readonly state: TaskState;
  readonly context: unknown;
  readonly priority: number;
  readonly tags: readonly string[];
  readonly initiator: string | null;
  readonly sourceSystem: string | null;
  readonly reason: string | null;
  readonly correlationId: string | null;
  readonly identityKey: string | null;
  /** Number of steps in each state, and in all. */
  readonly stepCounts: { readonly total: number; readonly byState: Readonly<Record<StepState, number>> };
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly completedAt: Date | null;
}

/** The task row of {@link insertTaskGraph}. */
export interface NewTaskRow {
  readonly id: string;
  readonly templateId: string;
  readonly namespace: string;
  readonly name: string;
  readonly version: string;
  readonly contextJson: string;
  readonly priority: number;
  readonly tags: readonly string[];
  readonly initiator: string | null;
  readonly sourceSystem: string | null;
  readonly reason: string | null;
  readonly correlationId: string | null;
  readonly identityKey: string | null;
}

/** One step row of {@link insertTaskGraph}. */
export interface NewStepRow {
  readonly id: string;
  readonly name: string;
  readonly handler: string;
  readonly handlerConfigJson: string;
  readonly position: number;
  readonly maxAttempts: number;
  readonly retryJson: string;
  readonly timeoutMs: number | null;
  /** Number of distinct dependencies. */
  readonly parentCount: number;
}

/** One dependency edge (`toId` runs after `fromId`) of {@link insertTaskGraph}. */
export interface NewEdgeRow {
  readonly fromId: string;
  readonly toId: string;
}

/** What {@link insertTaskGraph} did. */
export interface InsertTaskGraphResult {
  /** False when a task with the same identity key already existed (nothing was written). */
  readonly created: boolean;
  /** Handlers of the root steps, claimable at once. */
  readonly readyHandlers: readonly string[];
  readonly maxEventId: number;
}

/**
 * Inserts a task with all its steps and edges, a `create` transition for the task
 * and each step, and a `task.created` event — one statement, arrays through `unnest`.
 * Roots get `pending_parents = 0, ready_at = now`; other steps `pending_parents =
 * parentCount, ready_at = NULL`. With an identity key, a conflicting task makes the
 * insert a no-op (`created: false`) through the partial unique index: steps, edges and
 * logs all select from the task insert's RETURNING, so they are skipped with it.
 */
export async function insertTaskGraph(
  trx: Executor,
  task: NewTaskRow,
  steps: readonly NewStepRow[],
  edges: readonly NewEdgeRow[],
  now: Date,
): Promise<InsertTaskGraphResult> {
  const col = <T>(f: (s: NewStepRow) => T): T[] => steps.map(f);
  const created = JSON.stringify({
    to: S.Pending,
    template: { namespace: task.namespace, name: task.name, version: task.version },
    steps: steps.length,
    ...(task.reason ? { reason: task.reason } : {}),
  });
  const { rows } = await sql<{ created: boolean; max_event_id: number | null; ready_handlers: string[] }>`
    with task as (
      insert into tasks (id, template_id, namespace, name, version, state, context, priority, tags, initiator,
                         source_system, reason, correlation_id, identity_key, steps_total, steps_pending,
                         created_at, updated_at)
      values (${task.id}::uuid, ${task.templateId}::uuid, ${task.namespace}, ${task.name}, ${task.version}, 'pending',
              ${task.contextJson}::jsonb, ${task.priority}::int, ${[...task.tags]}::text[], ${task.initiator},
              ${task.sourceSystem}, ${task.reason}, ${task.correlationId}, ${task.identityKey},
              ${steps.length}::int, ${steps.length}::int, ${now}::timestamptz, ${now}::timestamptz)
      on conflict (namespace, name, identity_key) where identity_key is not null do nothing
      returning id, namespace, name
    ),
    steps as (
      insert into workflow_steps (id, task_id, name, handler, handler_config, position, state, max_attempts, retry,
                                  timeout_ms, priority, parent_count, pending_parents, ready_at, created_at, updated_at)
      select s.id, task.id, s.name, s.handler, s.config::jsonb, s.position, 'pending', s.max_attempts, s.retry::jsonb,
             s.timeout_ms, ${task.priority}::int, s.parents, s.parents,
             case when s.parents = 0 then ${now}::timestamptz end, ${now}::timestamptz, ${now}::timestamptz
      from task, unnest(${col((s) => s.id)}::uuid[], ${col((s) => s.name)}::text[], ${col((s) => s.handler)}::text[],
                        ${col((s) => s.handlerConfigJson)}::text[], ${col((s) => s.position)}::int[],
                        ${col((s) => s.maxAttempts)}::int[], ${col((s) => s.retryJson)}::text[],
                        ${col((s) => s.timeoutMs)}::int[], ${col((s) => s.parentCount)}::int[])
           as s(id, name, handler, config, position, max_attempts, retry, timeout_ms, parents)
      returning id, handler, parent_count
    ),
    edges as (
      insert into workflow_step_edges (task_id, from_step_id, to_step_id)
      select task.id, e.from_id, e.to_id
      from task, unnest(${edges.map((e) => e.fromId)}::uuid[], ${edges.map((e) => e.toId)}::uuid[]) as e(from_id, to_id)
    ),
    task_log as (
      insert into task_transitions (task_id, from_state, to_state, event, reason, created_at)
      select id, null, 'pending', 'create', ${task.reason}, ${now}::timestamptz from task
    ),
    step_log as (
      insert into workflow_step_transitions (step_id, task_id, attempt, from_state, to_state, event, created_at)
      select id, ${task.id}::uuid, 0, null, 'pending', 'create', ${now}::timestamptz from steps
    ),
    events as (
      insert into tasker_events (event_type, namespace, task_name, task_id, payload, created_at)
      select ${TaskEvent.Created}, namespace, name, id, ${created}::jsonb, ${now}::timestamptz from task
      returning id
    )
    select exists (select 1 from task) as created,
           (select max(id) from events) as max_event_id,
           array(select distinct handler from steps where parent_count = 0) as ready_handlers`.execute(trx);
  const row = rows[0];
  return {
    created: row?.created === true,
    readyHandlers: row?.ready_handlers ?? [],
    maxEventId: Number(row?.max_event_id ?? 0),
  };
}

const TASK_COLUMNS = sql.raw(
  [
    'id', 'template_id', 'namespace', 'name', 'version', 'state', 'context', 'priority', 'tags', 'initiator',
    'source_system', 'reason', 'correlation_id', 'identity_key', 'steps_total',
    ...STEP_STATES.map(counterColumn), 'created_at', 'updated_at', 'completed_at',
  ].join(', '),
);

type TaskRow = Record<string, unknown> & {
  id: string;
  template_id: string;
  namespace: string;
  name: string;
  version: string;
  state: TaskState;
  context: unknown;
  priority: number;
  tags: string[];
  initiator: string | null;
  source_system: string | null;
  reason: string | null;
  correlation_id: string | null;
  identity_key: string | null;
  steps_total: number;
  created_at: Date;
  updated_at: Date;
  completed_at: Date | null;
};

function toTaskRecord(row: TaskRow): TaskRecord {
  const byState = {} as Record<StepState, number>;
  for (const s of STEP_STATES) byState[s] = Number(row[counterColumn(s)] ?? 0);
  return {
    id: row.id,
    templateId: row.template_id,
    namespace: row.namespace,
    name: row.name,
    version: row.version,
    state: row.state,
    context: row.context,
    priority: row.priority,
    tags: row.tags,
    initiator: row.initiator,
    sourceSystem: row.source_system,
    reason: row.reason,
    correlationId: row.correlation_id,
    identityKey: row.identity_key,
    stepCounts: { total: Number(row.steps_total), byState },
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    completedAt: row.completed_at,
  };
}

/** The task with id `id`, or null. With `forUpdate`, the row is locked until the transaction ends. */
export async function findTask(db: Executor, id: string, options: { forUpdate?: boolean } = {}): Promise<TaskRecord | null> {
  const lock = options.forUpdate ? sql`for update` : sql``;
  const { rows } = await sql<TaskRow>`select ${TASK_COLUMNS} from tasks where id = ${id}::uuid ${lock}`.execute(db);
  return rows[0] ? toTaskRecord(rows[0]) : null;
}

/** The task of template `namespace/name` with identity key `identityKey`, or null. */
export async function findTaskByIdentity(
  db: Executor,
  namespace: string,
  name: string,
  identityKey: string,
): Promise<TaskRecord | null> {
  const { rows } = await sql<TaskRow>`
    select ${TASK_COLUMNS} from tasks
    where namespace = ${namespace} and name = ${name} and identity_key = ${identityKey}`.execute(db);
  return rows[0] ? toTaskRecord(rows[0]) : null;
}
