/**
 * The step aggregate: claiming ready steps, locking steps before deciding their
 * next state, ancestor results, progress rows, and plain reads. State changes other
 * than claims go through `step-changes.ts`.
 */
import { sql } from 'kysely';
import type { RawBuilder } from 'kysely';
import { StepEvent, taskEventFor } from '../domain/events.js';
import type { StepState } from '../domain/step-state.js';
import { CLAIMABLE_STEP_STATES, STEP_TRANSITIONS, StepState as S } from '../domain/step-state.js';
import type { TaskState } from '../domain/task-state.js';
import { ACTIVE_TASK_STATES, deriveTaskState, stepCounts } from '../domain/task-state.js';
import { EVENTS_CHANNEL } from './events.js';
import { PREPARED } from './prepared-statements.js';
import type { Executor } from './sql-helpers.js';
import { literalList, millis } from './sql-helpers.js';

/** Options of {@link claimReadySteps}. */
export interface ClaimOptions {
  readonly sessionId: string;
  /** The `step_batches` row to create for the claimed steps (only created if at least one is claimed). */
  readonly batchId: string;
  /** Handlers the session serves; only their steps are claimed. */
  readonly handlers: readonly string[];
  /** Namespaces the session serves (`worker_sessions.namespaces`); only steps of their tasks are claimed. Empty or absent: all. */
  readonly namespaces?: readonly string[];
  /** At most this many steps (the session's open credit). */
  readonly limit: number;
  /** Lease length: the step returns to ready if not completed or renewed by then. */
  readonly leaseMs: number;
  readonly now: Date;
}

/** A step leased to a session by {@link claimReadySteps}. */
export interface ClaimedStep {
  readonly stepId: string;
  /** The attempt this lease is for (1-based); every report must name it. */
  readonly attempt: number;
  readonly taskId: string;
  readonly namespace: string;
  readonly taskName: string;
  readonly version: string;
  readonly stepName: string;
  readonly handler: string;
  /** handler_config as JSON text, straight from the database. */
  readonly handlerConfigJson: string;
  /** The task context as JSON text. */
  readonly contextJson: string;
  readonly correlationId: string | null;
  /** JSON object text: result of every ancestor (not only parents), keyed by step name; `{}` for a root. */
  readonly ancestorResultsJson: string;
  readonly maxAttempts: number;
  readonly timeoutMs: number | null;
  /** When the attempt times out; null without a timeout. */
  readonly deadline: Date | null;
  readonly leaseExpiresAt: Date;
  readonly parentCount: number;
  readonly priority: number;
}

/** What {@link claimReadySteps} did. */
export interface ClaimResult {
  readonly steps: readonly ClaimedStep[];
  readonly maxEventId: number;
}

type ClaimRow = {
  kind: 'step' | 'task' | 'ancestors' | 'event';
  step_id: string | null;
  task_id: string | null;
  step_name: string | null;
  handler: string | null;
  handler_config: string | null;
  attempts: number | null;
  max_attempts: number | null;
  timeout_ms: number | null;
  deadline_at: Date | null;
  lease_expires_at: Date | null;
  parent_count: number | null;
  step_priority: number | null;
  namespace: string | null;
  task_name: string | null;
  version: string | null;
  context: string | null;
  correlation_id: string | null;
  ancestors: string | null;
  max_event_id: number | string | null;
};

/**
 * The state a claim settles an active task to. With a step leased, `deriveTaskState`
 * depends on one fact only — whether some step failed permanently: the task cannot
 * be complete (a leased step is unsatisfied) and something runs, so it is
 * `blocked_by_failures` with a failed step and `in_progress` without. Both values
 * are computed from the domain rule itself (and checked against it over all counts
 * by test/unit/claim-settle.test.ts), so the claim statement can write the task's
 * counters and state in ONE update instead of a second settle statement.
 */
export const CLAIMED_TASK_STATE = {
  withErrors: deriveTaskState(stepCounts({ enqueued: 1, error: 1 })),
  clean: deriveTaskState(stepCounts({ enqueued: 1 })),
} as const;

/**
 * The ancestor results of the claimed steps, as a subquery of the claim statement
 * over its `claimed` CTE (see {@link fetchAncestorResults} for the walk and its
 * plan). Its own `WITH RECURSIVE` keeps the claim's other CTEs non-recursive.
 */
const ANCESTOR_RESULTS = sql`
      with recursive anc(step_id, ancestor_id) as (
        select c.id, e.from_step_id
        from claimed c
        cross join lateral (select from_step_id from workflow_step_edges where to_step_id = c.id offset 0) e
        where c.parent_count > 0
        union
        select a.step_id, e.from_step_id
        from anc a
        cross join lateral (select from_step_id from workflow_step_edges where to_step_id = a.ancestor_id offset 0) e
      )
      select a.step_id, jsonb_object_agg(s.name, s.result)::text as results
      from anc a
      cross join lateral (select name, result from workflow_steps where id = a.ancestor_id offset 0) s
      group by a.step_id`;

/** `CASE` over (old_state, new_state) giving the settle event of a claim's task transition (`taskEventFor`). */
const CLAIM_EVENT_CASE = sql.raw(
  `case ${ACTIVE_TASK_STATES.flatMap((from) =>
    [CLAIMED_TASK_STATE.withErrors, CLAIMED_TASK_STATE.clean]
      .filter((to) => to !== from)
      .map((to) => `when k.old_state = '${from}' and k.new_state = '${to}' then '${taskEventFor(from, to, 'settle')}'`),
  ).join(' ')} end`,
);

/**
 * Claims up to `limit` ready steps of `handlers` for a session, in one statement:
 *
 * - `locked` walks `workflow_steps_ready_idx` once per handler (its predicate is
 *   repeated literally so the planner can use the partial index), in priority,
 *   ready_at, id order, and locks with `FOR UPDATE SKIP LOCKED`: concurrent claimers on
 *   any instance skip each other's rows instead of queueing, so every step is claimed
 *   exactly once. Per handler (a lateral join) rather than `handler = ANY($1)`, because
 *   only an equality on the leading column lets the index deliver rows in order and
 *   stop after `limit`; with `= ANY` PostgreSQL reads and sorts every ready row of the
 *   handler — measured 9.2 ms against 0.17 ms for 100 of 5,000 ready steps. With
 *   several handlers up to `limit` rows per handler are locked and the best `limit`
 *   kept (`candidates`); the rest stay locked, unchanged, until this transaction ends.
 *   A session restricted to namespaces skips steps of other namespaces' tasks (one
 *   `tasks_pkey` probe per candidate, before it is locked); handlers are normally
 *   namespace-specific, so the walk rarely passes over many such rows, and keeping
 *   the namespace out of the index keeps every step write from carrying it;
 * - `claimed` moves them to `enqueued` (CAS on the enqueue rule's `from` states),
 *   increments `attempts`, and sets session, batch, lease and timeout deadline;
 * - `task_locks` locks the tasks of the claimed steps in id order (like every
 *   statement that moves steps, so claimers and outcome batches touching the same
 *   tasks queue rather than deadlock) and `counted` writes each task row ONCE: its
 *   counters and its settled state ({@link CLAIMED_TASK_STATE}), with a
 *   `task_transitions` row and a `task.started`/`task.resumed` event when it moved;
 * - the same statement creates the `step_batches` row and appends transitions and
 *   `step.enqueued` events (namespace and task name by `tasks_pkey` probes). No CTE
 *   is joined to another CTE but through a primary key (see `step-changes.ts`).
 * - the ancestor results of the claimed steps that have parents
 *   ({@link ANCESTOR_RESULTS}) and the NOTIFY of the appended events come from the
 *   same statement.
 * Steps, tasks and ancestor results come back as separate rows (a task's context is
 * sent once however many of its steps were claimed). One statement, so the claim is
 * one round trip and, run on its own, its own transaction: a claim costs one commit
 * and no BEGIN/COMMIT round trips. It needs JIT off — the planner estimates the
 * recursive ancestor walk at millions of rows whatever its real size, which crosses
 * `jit_above_cost`; measured on PostgreSQL 15 with 100 claimed steps of 725 ancestor
 * pairs, JIT compilation took 185 ms of a 230 ms query that runs in 5 ms without it —
 * so Tasker's pool connects with `jit = off` (`postgres-database.ts`).
 */
export async function claimReadySteps(db: Executor, options: ClaimOptions): Promise<ClaimResult> {
  const { sessionId, batchId, now } = options;
  if (options.limit <= 0 || options.handlers.length === 0) return { steps: [], maxEventId: 0 };
  const meta = JSON.stringify({ session_id: sessionId, batch_id: batchId });
  const namespaces = [...new Set(options.namespaces ?? [])];
  const namespaceFilter =
    namespaces.length === 0
      ? sql``
      : sql`and exists (select 1 from tasks nt where nt.id = s.task_id and nt.namespace = any(${namespaces}::text[]))`;
  const { rows } = await sql<ClaimRow>`${PREPARED}
    with locked as (
      select c.id, c.state, c.priority, c.ready_at
      from unnest(${[...new Set(options.handlers)]}::text[]) as h(handler)
      cross join lateral (
        select s.id, s.state, s.priority, s.ready_at from workflow_steps s
        where s.handler = h.handler
          and s.state in (${literalList(CLAIMABLE_STEP_STATES)}) and s.pending_parents = 0
          and s.ready_at <= ${now}::timestamptz
          ${namespaceFilter}
        order by s.priority desc, s.ready_at, s.id
        limit ${options.limit}::int
        for update of s skip locked
      ) c
    ),
    candidates as (
      select id, state from locked order by priority desc, ready_at, id limit ${options.limit}::int
    ),
    claimed as (
      update workflow_steps s set
        state = ${S.Enqueued}, attempts = s.attempts + 1, session_id = ${sessionId}::uuid, batch_id = ${batchId}::uuid,
        lease_expires_at = ${now}::timestamptz + ${millis(options.leaseMs)},
        deadline_at = ${now}::timestamptz + ${millis(sql`s.timeout_ms`)},
        updated_at = ${now}::timestamptz
      from candidates c
      where s.id = c.id and s.state in (${literalList(STEP_TRANSITIONS.enqueue.from)})
      returning s.id, s.task_id, s.name, s.handler, s.handler_config, s.attempts, s.max_attempts, s.timeout_ms,
                s.deadline_at, s.lease_expires_at, s.parent_count, s.priority, s.ready_at, c.state as from_state
    ),
    deltas as (
      select task_id,
             count(*) filter (where from_state = ${S.Pending})::int as from_pending,
             count(*) filter (where from_state = ${S.WaitingForRetry})::int as from_waiting,
             count(*)::int as n
      from claimed group by task_id
    ),
    task_locks as (
      select t.id, t.state as old_state, d.from_pending, d.from_waiting, d.n
      from deltas d join tasks t on t.id = d.task_id
      order by t.id for update of t
    ),
    counted as (
      update tasks t set
        steps_pending = t.steps_pending - l.from_pending,
        steps_waiting_for_retry = t.steps_waiting_for_retry - l.from_waiting,
        steps_enqueued = t.steps_enqueued + l.n,
        state = case when l.old_state in (${literalList(ACTIVE_TASK_STATES)})
                     then case when t.steps_error > 0 then ${CLAIMED_TASK_STATE.withErrors}::text
                               else ${CLAIMED_TASK_STATE.clean}::text end
                     else t.state end,
        updated_at = ${now}::timestamptz
      from task_locks l
      where t.id = l.id
      returning t.id, t.namespace, t.name, t.version, t.context, t.correlation_id, l.old_state, t.state as new_state
    ),
    batch as (
      insert into step_batches (id, session_id, state, step_count, created_at, updated_at)
      select ${batchId}::uuid, ${sessionId}::uuid, 'sent', count(*), ${now}::timestamptz, ${now}::timestamptz
      from claimed having count(*) > 0
    ),
    step_log as (
      insert into workflow_step_transitions (step_id, task_id, attempt, from_state, to_state, event, metadata, created_at)
      select id, task_id, attempts, from_state, ${S.Enqueued}, 'enqueue', ${meta}::jsonb, ${now}::timestamptz from claimed
    ),
    task_log as (
      insert into task_transitions (task_id, from_state, to_state, event, reason, metadata, created_at)
      select id, old_state, new_state, 'settle', null, '{}'::jsonb, ${now}::timestamptz
      from counted where new_state <> old_state order by id
    ),
    events as (
      insert into tasker_events (event_type, namespace, task_name, task_id, step_id, step_name, payload, created_at)
      select event_type, namespace, task_name, task_id, step_id, step_name, payload, ${now}::timestamptz
      from (
        select 1 as grp, ${StepEvent.Enqueued} as event_type, t.namespace, t.name as task_name, c.task_id, c.id as step_id,
               c.name as step_name,
               jsonb_build_object('from', c.from_state, 'to', ${S.Enqueued}::text, 'attempt', c.attempts,
                                  'session_id', ${sessionId}::text, 'batch_id', ${batchId}::text) as payload
        from claimed c join tasks t on t.id = c.task_id
        union all
        select 2, ${CLAIM_EVENT_CASE}, k.namespace, k.name, k.id, null, null,
               jsonb_build_object('from', k.old_state, 'to', k.new_state)
        from counted k where k.new_state <> k.old_state
      ) x
      order by grp, task_id, step_id
      returning id
    )
    select * from (
      select 'step' as kind, c.id as step_id, c.task_id, c.name as step_name, c.handler,
             c.handler_config::text as handler_config, c.attempts, c.max_attempts, c.timeout_ms, c.deadline_at,
             c.lease_expires_at, c.parent_count, c.priority as step_priority,
             null::text as namespace, null::text as task_name, null::text as version, null::text as context,
             null::text as correlation_id, null::text as ancestors, null::bigint as max_event_id, null::text as notified
      from claimed c order by c.priority desc, c.ready_at, c.id
    ) steps
    union all
    select 'task', null, k.id, null, null, null, null, null, null, null, null, null, null,
           k.namespace, k.name, k.version, k.context::text, k.correlation_id, null, null, null
    from counted k
    union all
    select 'ancestors', x.step_id, null, null, null, null, null, null, null, null, null, null, null,
           null, null, null, null, null, x.results, null, null
    from (${ANCESTOR_RESULTS}) x
    union all
    select 'event', null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null,
           e.max_id, case when e.max_id is not null then pg_notify(${EVENTS_CHANNEL}, e.max_id::text)::text end
    from (select max(id) as max_id from events) e`.execute(db);
  return collectClaim(rows);
}

function collectClaim(rows: readonly ClaimRow[]): ClaimResult {
  const tasks = new Map<string, ClaimRow>();
  const ancestors = new Map<string, string>();
  let maxEventId = 0;
  for (const r of rows) {
    if (r.kind === 'task' && r.task_id) tasks.set(r.task_id, r);
    else if (r.kind === 'ancestors' && r.step_id) ancestors.set(r.step_id, r.ancestors ?? '{}');
    else if (r.kind === 'event') maxEventId = Number(r.max_event_id ?? 0);
  }
  const steps: ClaimedStep[] = [];
  for (const r of rows) {
    if (r.kind !== 'step') continue;
    const task = tasks.get(r.task_id as string);
    if (!task) throw new Error(`claimed step ${r.step_id} of task ${r.task_id} without its task row`);
    steps.push({
      stepId: r.step_id as string,
      attempt: Number(r.attempts),
      taskId: r.task_id as string,
      namespace: task.namespace as string,
      taskName: task.task_name as string,
      version: task.version as string,
      stepName: r.step_name as string,
      handler: r.handler as string,
      handlerConfigJson: r.handler_config as string,
      contextJson: task.context as string,
      correlationId: task.correlation_id,
      ancestorResultsJson: ancestors.get(r.step_id as string) ?? '{}',
      maxAttempts: Number(r.max_attempts),
      timeoutMs: r.timeout_ms,
      deadline: r.deadline_at,
      leaseExpiresAt: r.lease_expires_at as Date,
      parentCount: Number(r.parent_count),
      priority: Number(r.step_priority),
    });
  }
  return { steps, maxEventId };
}

/**
 * Results of every ancestor (not only the parents) of each step, as a JSON object
 * text `{"<step name>": <result>, ...}` per step id; steps without ancestors map to
 * `{}`. One recursive query for the whole batch.
 *
 * Why a recursive walk over edges rather than a stored ancestor list: a stored list
 * costs O(depth) per step at creation (O(n²) rows for a 10,000-step chain, written on
 * every task even if most steps never need it), while the walk reads only edges of
 * the claimed steps' ancestry through `workflow_step_edges_to_idx`. `union` (not
 * `union all`) keeps each (step, ancestor) pair once, so diamonds do not multiply
 * rows. Claiming step k of a linear chain reads k edges — inherent to handing it k
 * results.
 *
 * The lateral subqueries (`offset 0` keeps them from being flattened into joins) pin
 * the plan to index lookups per (step, ancestor) pair. Left to itself the planner
 * estimates the worktable at thousands of rows and hash-joins whole tables: measured
 * on PostgreSQL 15 with 30,000 steps, 100 claimed steps and 1,400 ancestor pairs,
 * 31 ms with hash joins (growing with the tables) against 8 ms with index lookups
 * (growing only with the pairs). These inflated estimates would also trigger JIT,
 * which Tasker's pool turns off (see {@link claimReadySteps}).
 */
export async function fetchAncestorResults(db: Executor, stepIds: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>(stepIds.map((id) => [id, '{}']));
  if (stepIds.length === 0) return out;
  const { rows } = await sql<{ step_id: string; results: string }>`
    with recursive anc(step_id, ancestor_id) as (
      select c.id, e.from_step_id
      from unnest(${[...stepIds]}::uuid[]) as c(id)
      cross join lateral (select from_step_id from workflow_step_edges where to_step_id = c.id offset 0) e
      union
      select a.step_id, e.from_step_id
      from anc a
      cross join lateral (select from_step_id from workflow_step_edges where to_step_id = a.ancestor_id offset 0) e
    )
    select a.step_id, jsonb_object_agg(s.name, s.result)::text as results
    from anc a
    cross join lateral (select name, result from workflow_steps where id = a.ancestor_id offset 0) s
    group by a.step_id`.execute(db);
  for (const row of rows) out.set(row.step_id, row.results);
  return out;
}

/** A step as read under lock, with what deciding its next state needs. */
export interface LockedStep {
  readonly id: string;
  readonly taskId: string;
  readonly name: string;
  readonly handler: string;
  readonly state: StepState;
  readonly attempts: number;
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
}

interface LockedRow {
  id: string;
  task_id: string;
  name: string;
  handler: string;
  state: StepState;
  attempts: number;
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

function toLocked(r: LockedRow): LockedStep {
  return {
    id: r.id,
    taskId: r.task_id,
    name: r.name,
    handler: r.handler,
    state: r.state,
    attempts: r.attempts,
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
  s.id, s.task_id, s.name, s.handler, s.state, s.attempts, s.max_attempts, s.retry, s.session_id, s.batch_id,
  s.pending_parents, s.last_error, t.state as task_state, t.namespace, t.name as task_name`;

/**
 * Locks the given steps (`FOR UPDATE`, in id order so that concurrent lockers cannot
 * deadlock on them) and returns them keyed by id; unknown ids are absent. The task
 * row is read, not locked.
 */
export async function lockSteps(trx: Executor, ids: readonly string[]): Promise<Map<string, LockedStep>> {
  if (ids.length === 0) return new Map();
  const { rows } = await sql<LockedRow>`${PREPARED}
    select ${LOCKED_COLUMNS}
    from workflow_steps s join tasks t on t.id = s.task_id
    where s.id = any(${[...new Set(ids)]}::uuid[])
    order by s.id
    for update of s`.execute(trx);
  return new Map(rows.map((r) => [r.id, toLocked(r)]));
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
 * Stores progress rows and a `step.progress` event for each new one; a row whose
 * (step, attempt, seq) exists is skipped. Returns the keys `stepId:attempt:seq` that
 * were new, and the highest event id.
 */
export async function insertProgress(
  trx: Executor,
  rows: readonly NewProgress[],
  now: Date,
): Promise<{ inserted: Set<string>; maxEventId: number }> {
  if (rows.length === 0) return { inserted: new Set(), maxEventId: 0 };
  const col = <T>(f: (p: NewProgress) => T): T[] => rows.map(f);
  const result = await sql<{ key: string | null; max_event_id: number | null }>`${PREPARED}
    with input as (
      select * from unnest(${col((p) => p.stepId)}::uuid[], ${col((p) => p.taskId)}::uuid[], ${col((p) => p.attempt)}::int[],
                           ${col((p) => p.seq)}::bigint[], ${col((p) => p.payloadJson)}::text[], ${col((p) => p.namespace)}::text[],
                           ${col((p) => p.taskName)}::text[], ${col((p) => p.stepName)}::text[])
        with ordinality as i(step_id, task_id, attempt, seq, payload, namespace, task_name, step_name, ord)
    ),
    ins as (
      insert into step_progress (step_id, attempt, seq, task_id, payload, created_at)
      select step_id, attempt, seq, task_id, payload::jsonb, ${now}::timestamptz from input order by ord
      on conflict (step_id, attempt, seq) do nothing
      returning step_id, attempt, seq, payload
    ),
    events as (
      insert into tasker_events (event_type, namespace, task_name, task_id, step_id, step_name, payload, created_at)
      select ${StepEvent.Progress}, i.namespace, i.task_name, i.task_id, i.step_id, i.step_name,
             jsonb_build_object('attempt', n.attempt, 'seq', n.seq, 'payload', n.payload), ${now}::timestamptz
      from ins n join input i on i.step_id = n.step_id and i.attempt = n.attempt and i.seq = n.seq
      order by i.ord
      returning id
    )
    select n.step_id || ':' || n.attempt || ':' || n.seq as key, (select max(id) from events) as max_event_id from ins n
    union all
    select null, (select max(id) from events)`.execute(trx);
  const inserted = new Set<string>();
  let maxEventId = 0;
  for (const r of result.rows) {
    if (r.key) inserted.add(r.key);
    maxEventId = Math.max(maxEventId, Number(r.max_event_id ?? 0));
  }
  return { inserted, maxEventId };
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
