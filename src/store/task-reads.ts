/**
 * The task read API: GetTask ({@link getTaskDetails}) and ListTasks ({@link listTasks}).
 * Every read takes a constant number of queries whatever the number of steps; reads
 * that combine several queries run in one read-only REPEATABLE READ snapshot, so the
 * task row, its steps and its execution context always describe the same moment.
 */
import { sql } from 'kysely';
import type { RawBuilder } from 'kysely';
import { NotFoundError, ValidationError } from '../domain/errors.js';
import { isUuid } from '../domain/ids.js';
import type { StepState } from '../domain/step-state.js';
import { STEP_STATES } from '../domain/step-state.js';
import type { TaskState } from '../domain/task-state.js';
import { isTaskState } from '../domain/task-state.js';
import { decodePageToken, encodePageToken, filterDigest } from './page-token.js';
import { getExecutionContext } from './readiness-reads.js';
import type { ExecutionContext } from './readiness-reads.js';
import type { Executor } from './sql-helpers.js';
import { counterColumn } from './task-counters.js';
import { findTask } from './tasks.js';
import type { TaskRecord } from './tasks.js';

/** One step as GetTask shows it. */
export interface StepDetails {
  readonly id: string;
  readonly name: string;
  readonly handler: string;
  readonly state: StepState;
  /** Index in the template. */
  readonly position: number;
  /** The number of the current or last attempt: counts every attempt of the step's life. */
  readonly attempts: number;
  /** Attempts made before the current retry allowance (an operator retry sets it to `attempts`). */
  readonly attemptBase: number;
  /** Attempts per allowance. */
  readonly maxAttempts: number;
  readonly timeoutMs: number | null;
  /** Names of the parents, in template order. */
  readonly dependsOn: readonly string[];
  /** True when the step has a stored result (which may be JSON null). */
  readonly hasResult: boolean;
  /** The stored result; absent when results were not asked for or there is none. */
  readonly result?: unknown;
  /** The last failure document (`{error_class, message, ...}`), or null. */
  readonly lastError: Record<string, unknown> | null;
  /** Session holding (or that last held) the step. */
  readonly sessionId: string | null;
  readonly readyAt: Date | null;
  /** While waiting_for_retry: when the backoff ends; null otherwise. */
  readonly nextAttemptAt: Date | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
  readonly startedAt: Date | null;
  readonly completedAt: Date | null;
}

/** A dependency edge by step name: `to` runs after `from`. */
export interface TaskEdge {
  readonly from: string;
  readonly to: string;
  readonly fromStepId: string;
  readonly toStepId: string;
}

/** Everything GetTask returns. */
export interface TaskDetails {
  readonly task: TaskRecord;
  /** In template order. */
  readonly steps: readonly StepDetails[];
  /** Ordered by child, then parent, in template order. */
  readonly edges: readonly TaskEdge[];
  readonly executionContext: ExecutionContext;
}

/** Options of {@link getTaskDetails}. */
export interface TaskDetailsOptions {
  /** Include step results (default true). */
  readonly includeResults?: boolean;
  /** The time readiness is evaluated at (from the engine's Clock). */
  readonly now: Date;
}

/** Runs `fn` in one read-only REPEATABLE READ snapshot, or in the caller's transaction. */
export async function inReadSnapshot<T>(db: Executor, fn: (trx: Executor) => Promise<T>): Promise<T> {
  if (db.isTransaction) return fn(db);
  return db.transaction().setIsolationLevel('repeatable read').setAccessMode('read only').execute(fn);
}

interface StepSqlRow {
  id: string;
  name: string;
  handler: string;
  state: StepState;
  position: number;
  attempts: number;
  attempt_base: number;
  max_attempts: number;
  timeout_ms: number | null;
  has_result: boolean;
  result: unknown;
  last_error: Record<string, unknown> | null;
  session_id: string | null;
  ready_at: Date | null;
  created_at: Date;
  updated_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
}

function toStepDetails(r: StepSqlRow, dependsOn: readonly string[], includeResults: boolean): StepDetails {
  return {
    id: r.id,
    name: r.name,
    handler: r.handler,
    state: r.state,
    position: r.position,
    attempts: r.attempts,
    attemptBase: r.attempt_base,
    maxAttempts: r.max_attempts,
    timeoutMs: r.timeout_ms,
    dependsOn,
    hasResult: r.has_result,
    ...(includeResults && r.has_result ? { result: r.result } : {}),
    lastError: r.last_error,
    sessionId: r.session_id,
    readyAt: r.ready_at,
    nextAttemptAt: r.state === 'waiting_for_retry' ? r.ready_at : null,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    startedAt: r.started_at,
    completedAt: r.completed_at,
  };
}

/**
 * One task with its steps (parent names, attempts, results if asked, last error,
 * timestamps), its edges by step name and its execution context: four queries in one
 * snapshot, whatever the number of steps. Throws `NotFoundError` (`TASK_NOT_FOUND`)
 * for an unknown task or an id that is not a UUID.
 */
export async function getTaskDetails(db: Executor, taskId: string, options: TaskDetailsOptions): Promise<TaskDetails> {
  if (!isUuid(taskId)) throw new NotFoundError('task', taskId, 'TASK_NOT_FOUND');
  const includeResults = options.includeResults ?? true;
  return inReadSnapshot(db, async (trx) => {
    const task = await findTask(trx, taskId);
    if (!task) throw new NotFoundError('task', taskId, 'TASK_NOT_FOUND');
    const result = includeResults ? sql`s.result` : sql`null::jsonb`;
    const steps = await sql<StepSqlRow>`
      select s.id, s.name, s.handler, s.state, s.position, s.attempts, s.attempt_base, s.max_attempts, s.timeout_ms,
             s.result is not null as has_result, ${result} as result, s.last_error, s.session_id, s.ready_at,
             s.created_at, s.updated_at, s.started_at, s.completed_at
      from workflow_steps s where s.task_id = ${taskId}::uuid
      order by s.position, s.id`.execute(trx);
    // Edge rows carry ids only; names and order come from the steps just read.
    const edgeRows = await sql<{ from_step_id: string; to_step_id: string }>`
      select from_step_id, to_step_id from workflow_step_edges where task_id = ${taskId}::uuid`.execute(trx);
    const context = await getExecutionContext(trx, taskId, options.now);
    if (!context) throw new NotFoundError('task', taskId, 'TASK_NOT_FOUND');
    const byId = new Map(steps.rows.map((s) => [s.id, s]));
    const edges: TaskEdge[] = [];
    for (const e of edgeRows.rows) {
      const from = byId.get(e.from_step_id);
      const to = byId.get(e.to_step_id);
      if (from && to) edges.push({ from: from.name, to: to.name, fromStepId: from.id, toStepId: to.id });
    }
    const position = (id: string): number => byId.get(id)?.position ?? 0;
    edges.sort((a, b) => position(a.toStepId) - position(b.toStepId) || position(a.fromStepId) - position(b.fromStepId));
    const parents = new Map<string, string[]>();
    for (const e of edges) {
      const list = parents.get(e.toStepId);
      if (list) list.push(e.from);
      else parents.set(e.toStepId, [e.from]);
    }
    return {
      task,
      steps: steps.rows.map((s) => toStepDetails(s, parents.get(s.id) ?? [], includeResults)),
      edges,
      executionContext: context,
    };
  });
}

/** Default and largest page of {@link listTasks}. */
export const LIST_TASKS_DEFAULT_PAGE_SIZE = 50;
export const LIST_TASKS_MAX_PAGE_SIZE = 500;

/** Filters and paging of {@link listTasks}; filters combine with AND. */
export interface ListTasksOptions {
  readonly namespace?: string | null;
  readonly name?: string | null;
  /** Only tasks in one of these states (empty = any). */
  readonly states?: readonly TaskState[] | null;
  /** Only tasks carrying this tag. */
  readonly tag?: string | null;
  /** Only tasks created at or after this instant. */
  readonly createdAfter?: Date | null;
  /** Only tasks created before this instant. */
  readonly createdBefore?: Date | null;
  /** Tasks per page: absent or 0 = 50, larger than 500 = 500. */
  readonly pageSize?: number | null;
  /** `nextPageToken` of the previous page, under the same filters. */
  readonly pageToken?: string | null;
}

/** One page of {@link listTasks}. */
export interface TaskPage {
  /** Newest first (created_at DESC, id DESC). */
  readonly tasks: readonly TaskRecord[];
  /** Token of the next page; null on the last page. */
  readonly nextPageToken: string | null;
}

function pageSizeOf(requested: number | null | undefined): number {
  if (requested === undefined || requested === null || requested === 0) return LIST_TASKS_DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(requested) || requested < 0) {
    throw new ValidationError('page size must be a positive integer', [{ path: 'page_size', message: 'must be a positive integer' }], 'INVALID_PAGE_SIZE');
  }
  return Math.min(requested, LIST_TASKS_MAX_PAGE_SIZE);
}

function listFilters(o: ListTasksOptions): { digest: string; where: RawBuilder<unknown>[] } {
  const states = [...new Set(o.states ?? [])].sort();
  const bad = states.find((s) => !isTaskState(s));
  if (bad !== undefined) throw new ValidationError(`unknown task state ${String(bad)}`, [{ path: 'states', message: `unknown task state ${String(bad)}` }]);
  for (const [key, at] of [['created_after', o.createdAfter], ['created_before', o.createdBefore]] as const) {
    if (at && Number.isNaN(at.getTime())) throw new ValidationError(`${key} is not a valid time`, [{ path: key, message: 'not a valid time' }]);
  }
  const where: RawBuilder<unknown>[] = [];
  if (o.namespace) where.push(sql`namespace = ${o.namespace}`);
  if (o.name) where.push(sql`name = ${o.name}`);
  if (states.length > 0) where.push(sql`state = any(${states}::text[])`);
  if (o.tag) where.push(sql`tags @> array[${o.tag}]::text[]`);
  if (o.createdAfter) where.push(sql`created_at >= ${o.createdAfter}::timestamptz`);
  if (o.createdBefore) where.push(sql`created_at < ${o.createdBefore}::timestamptz`);
  const digest = filterDigest([
    o.namespace || null, o.name || null, states, o.tag || null,
    o.createdAfter?.toISOString() ?? null, o.createdBefore?.toISOString() ?? null,
  ]);
  return { digest, where };
}

const LIST_COLUMNS = sql.raw(
  [
    'id', 'template_id', 'namespace', 'name', 'version', 'state', 'context', 'priority', 'tags', 'initiator',
    'source_system', 'reason', 'correlation_id', 'identity_key', 'steps_total', ...STEP_STATES.map(counterColumn),
    'created_at', 'updated_at', 'completed_at',
  ].join(', '),
);

type ListRow = Record<string, unknown> & {
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
  /** created_at as exact UTC text (microseconds), for the page token. */
  position_at: string;
};

function toTaskRecord(r: ListRow): TaskRecord {
  const byState = {} as Record<StepState, number>;
  for (const s of STEP_STATES) byState[s] = Number(r[counterColumn(s)] ?? 0);
  return {
    id: r.id,
    templateId: r.template_id,
    namespace: r.namespace,
    name: r.name,
    version: r.version,
    state: r.state,
    context: r.context,
    priority: r.priority,
    tags: r.tags,
    initiator: r.initiator,
    sourceSystem: r.source_system,
    reason: r.reason,
    correlationId: r.correlation_id,
    identityKey: r.identity_key,
    stepCounts: { total: Number(r.steps_total), byState },
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    completedAt: r.completed_at,
  };
}

/**
 * Tasks matching the filters, newest first, one page at a time. Keyset pagination on
 * `(created_at DESC, id DESC)` (served by `tasks_created_idx`, or by the namespace/name,
 * state and tag indexes when those filters narrow more): the token holds the last row's
 * exact key, so tasks created between two calls never shift later pages. Throws
 * `ValidationError` `INVALID_PAGE_TOKEN` for a malformed token or one issued under other
 * filters, `INVALID_PAGE_SIZE` for a negative or fractional page size.
 */
export async function listTasks(db: Executor, options: ListTasksOptions = {}): Promise<TaskPage> {
  const pageSize = pageSizeOf(options.pageSize);
  const { digest, where } = listFilters(options);
  if (options.pageToken) {
    const after = decodePageToken(options.pageToken, digest);
    where.push(sql`(created_at, id) < (${after.at}::timestamptz, ${after.id}::uuid)`);
  }
  const condition = where.length > 0 ? sql.join(where, sql` and `) : sql`true`;
  const { rows } = await sql<ListRow>`
    select ${LIST_COLUMNS},
           to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as position_at
    from tasks
    where ${condition}
    order by created_at desc, id desc
    limit ${pageSize + 1}::int`.execute(db);
  const page = rows.slice(0, pageSize);
  const last = page.at(-1);
  const nextPageToken = rows.length > pageSize && last ? encodePageToken({ at: last.position_at, id: last.id }, digest) : null;
  return { tasks: page.map(toTaskRecord), nextPageToken };
}
