/**
 * Claiming ready steps for a worker session: one statement leases them, settles their
 * tasks, logs and notifies, and returns what each assignment carries — within a byte
 * budget, so that the StepBatch the claim becomes fits the worker's message limit.
 */
import { sql } from 'kysely';
import { StepEvent, taskEventFor } from '../domain/events.js';
import { CLAIMABLE_STEP_STATES, STEP_TRANSITIONS, StepState as S } from '../domain/step-state.js';
import { ACTIVE_TASK_STATES, deriveTaskState, stepCounts } from '../domain/task-state.js';
import { ANCESTOR_ENTRY_OVERHEAD, ancestorIds, buildAncestorResults, parentList } from './ancestor-results.js';
import type { AncestorNode } from './ancestor-results.js';
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
  /**
   * At most this many bytes of assignments ({@link assignmentBytes}) — except that the
   * first step is always claimed, whatever its size. Absent: no byte limit.
   */
  readonly maxBytes?: number;
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
  /**
   * The number of the last attempt the current retry allowance permits
   * (`attempt_base + max_attempts`): `attempt === maxAttempts` is the last.
   */
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
  /** Ready steps the claim locked but left ready because the byte budget was spent: claim again. */
  readonly leftByBudget: number;
}

/**
 * What one assignment adds to a StepBatch beyond its variable-length fields: two ids,
 * the protobuf tags and length prefixes of its fields, the deadline, the numbers, the
 * braces of the ancestor-results object, and its frame in the batch's repeated field.
 * An upper bound (the fixed part encodes to about 155 bytes).
 */
export const ASSIGNMENT_OVERHEAD_BYTES = 192;

/**
 * An upper bound of the encoded size of one assignment in a StepBatch: its texts
 * (UTF-8) plus {@link ASSIGNMENT_OVERHEAD_BYTES}. The claim statement bounds the same
 * sum from the database's side before it leases (see {@link claimReadySteps}).
 */
export function assignmentBytes(step: ClaimedStep): number {
  const texts = [
    step.namespace,
    step.taskName,
    step.version,
    step.stepName,
    step.handler,
    step.handlerConfigJson,
    step.contextJson,
    step.ancestorResultsJson,
    step.correlationId ?? '',
  ];
  return texts.reduce((sum, text) => sum + Buffer.byteLength(text, 'utf8'), ASSIGNMENT_OVERHEAD_BYTES);
}

type ClaimRow = {
  kind: 'step' | 'task' | 'nodes' | 'whole' | 'event';
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
  /**
   * For the `nodes` row: the subgraph of the tasks with several walked steps, as a JSON
   * array of {@link NodeTuple}; for a `whole` row: the ancestor results of the one
   * claimed step of its task that has parents (its task's whole subgraph).
   */
  result: string | null;
  /** For `step` rows: the parents' ids, comma-separated. */
  parents: string | null;
  position: number | null;
  max_event_id: number | string | null;
  left_by_budget: number | string | null;
};

/** One step of the claim's subgraph: id, task id, name, position, parents (comma-separated), result (JSON text). */
type NodeTuple = [string, string, string, number, string, string | null];

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

/** `CASE` over (old_state, new_state) giving the settle event of a claim's task transition (`taskEventFor`). */
const CLAIM_EVENT_CASE = sql.raw(
  `case ${ACTIVE_TASK_STATES.flatMap((from) =>
    [CLAIMED_TASK_STATE.withErrors, CLAIMED_TASK_STATE.clean]
      .filter((to) => to !== from)
      .map((to) => `when k.old_state = '${from}' and k.new_state = '${to}' then '${taskEventFor(from, to, 'settle')}'`),
  ).join(' ')} end`,
);

/** `maxBytes` when none is given: larger than any sum the statement computes. */
const NO_BYTE_LIMIT = Number.MAX_SAFE_INTEGER;

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
 * - the byte budget: `walk` reads the ancestors of the candidates that have parents
 *   once ({@link ancestorIds}) and `nodes` their names, positions and results — and
 *   their parents only in tasks with several such candidates (`linked`): with one,
 *   its ancestors are the whole subgraph of its task, and the statement writes its
 *   ancestor results itself (a `whole` row; a join of 5,000 branches needs no parent
 *   lists and ships one text, not 5,000 entries). A candidate's ancestor results cannot be larger than the entries of its
 *   task's whole subgraph, so `sized` bounds each assignment by its own texts and its
 *   task's (`candidates`), that union (`by_task`, a window over the task's nodes) and
 *   {@link ASSIGNMENT_OVERHEAD_BYTES}, and `chosen` keeps the candidates, in claim
 *   order, while the running sum of the bounds stays within `maxBytes` — always at
 *   least the first. The others stay ready (locked until the statement ends) and are
 *   counted in `leftByBudget`. The bound is tight where ancestries overlap (layers of
 *   a DAG, joins) and loose for a task of many disjoint deep branches, whose batches
 *   are then smaller than they could be. The budget's CTEs are never joined to one
 *   another — the planner estimates a CTE at one row and would rescan one per row of
 *   the other (measured: 65,536 task rows read for a 256-step claim, 5 ms of its 15)
 *   — and `chosen` hands the claim its steps as arrays: joined as a relation, the
 *   walk's inflated estimate made the planner update `workflow_steps` through a
 *   sequential scan;
 * - `claimed` moves the chosen steps to `enqueued` (CAS on the enqueue rule's `from`
 *   states), increments `attempts`, and sets session, batch, lease and timeout deadline;
 * - `task_locks` locks the tasks of the claimed steps in id order (like every
 *   statement that moves steps, so claimers and outcome batches touching the same
 *   tasks queue rather than deadlock) and `counted` writes each task row ONCE: its
 *   counters and its settled state ({@link CLAIMED_TASK_STATE}), with a
 *   `task_transitions` row and a `task.started`/`task.resumed` event when it moved;
 * - the same statement creates the `step_batches` row and appends transitions and
 *   `step.enqueued` events (namespace and task name by `tasks_pkey` probes), and
 *   sends the NOTIFY of the appended events.
 * Steps, the subgraph of linked tasks (one row: a JSON array of its steps, only for
 * tasks with a claimed step that has parents — thousands of ancestors parse far
 * faster as one JSON text than as rows), the `whole` ancestor results of the other
 * tasks and the tasks come back as separate rows: a task's context and each
 * ancestor's result are sent once however many claimed steps need them, and the
 * ancestor results of linked tasks are assembled here ({@link buildAncestorResults}). The subgraph
 * is read (`nodes`, materialized by the byte budget) and listed before `counted`
 * locks the task rows, which are held from then until the commit — claims and
 * outcome batches of the same task queue on them, so that window holds no
 * per-ancestor work. One statement, so the claim is one round trip and, run on its
 * own, its own transaction: a claim costs one commit and no BEGIN/COMMIT round trips.
 * It needs JIT off (see {@link ancestorIds}).
 */
export async function claimReadySteps(db: Executor, options: ClaimOptions): Promise<ClaimResult> {
  const { sessionId, batchId, now } = options;
  if (options.limit <= 0 || options.handlers.length === 0) return { steps: [], maxEventId: 0, leftByBudget: 0 };
  const meta = JSON.stringify({ session_id: sessionId, batch_id: batchId });
  const maxBytes = options.maxBytes ?? NO_BYTE_LIMIT;
  const namespaces = [...new Set(options.namespaces ?? [])];
  const namespaceFilter =
    namespaces.length === 0
      ? sql``
      : sql`and exists (select 1 from tasks nt where nt.id = s.task_id and nt.namespace = any(${namespaces}::text[]))`;
  const { rows } = await sql<ClaimRow>`${PREPARED}
    with locked as (
      select c.id, c.state, c.priority, c.ready_at, c.task_id, c.parent_count, c.own_bytes
      from unnest(${[...new Set(options.handlers)]}::text[]) as h(handler)
      cross join lateral (
        select s.id, s.state, s.priority, s.ready_at, s.task_id, s.parent_count,
               octet_length(s.name) + octet_length(s.handler) + octet_length(s.handler_config::text) as own_bytes
        from workflow_steps s
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
      select l.id, l.state, l.task_id, l.parent_count, row_number() over (order by l.priority desc, l.ready_at, l.id) as ord,
             l.own_bytes + (
               select octet_length(t.namespace) + octet_length(t.name) + octet_length(t.version)
                      + coalesce(octet_length(t.correlation_id), 0) + octet_length(t.context::text)
               from tasks t where t.id = l.task_id
             ) as own_bytes
      from locked l order by l.priority desc, l.ready_at, l.id limit ${options.limit}::int
    ),
    walk as (${ancestorIds(sql`candidates`)}),
    linked as materialized (
      select task_id from candidates where parent_count > 0 group by task_id having count(*) > 1
    ),
    nodes as (
      select a.task_id, w.id, a.name, a.position, a.result,
             case when a.task_id in (select task_id from linked) then coalesce(${parentList(sql`w.id`)}, '') end as parents,
             octet_length(a.name) + coalesce(octet_length(a.result), 4) + ${ANCESTOR_ENTRY_OVERHEAD}::int as bytes
      from walk w
      cross join lateral (select task_id, name, position, result::text as result from workflow_steps where id = w.id offset 0) a
    ),
    by_task as (
      select kind, id, state, ord, parent_count, own_bytes, sum(node_bytes) over (partition by task_id) as union_bytes
      from (
        select 'c' as kind, id, state, ord, task_id, parent_count, own_bytes, 0::bigint as node_bytes from candidates
        union all
        select 'n', null, null, null, task_id, null, null, bytes from nodes
      ) x
    ),
    sized as (
      select id, state, ord,
             sum(own_bytes + ${ASSIGNMENT_OVERHEAD_BYTES}::int + case when parent_count > 0 then union_bytes else 0 end)
               over (order by ord rows between unbounded preceding and current row) as running
      from by_task where kind = 'c'
    ),
    chosen as (
      select array_agg(id order by ord) as ids, array_agg(state order by ord) as states, count(*) as n
      from sized where ord = 1 or running <= ${maxBytes}::bigint
    ),
    claimed as (
      update workflow_steps s set
        state = ${S.Enqueued}, attempts = s.attempts + 1, session_id = ${sessionId}::uuid, batch_id = ${batchId}::uuid,
        lease_expires_at = ${now}::timestamptz + ${millis(options.leaseMs)},
        deadline_at = ${now}::timestamptz + ${millis(sql`s.timeout_ms`)},
        updated_at = ${now}::timestamptz
      from unnest((select ids from chosen), (select states from chosen)) as c(id, state)
      where s.id = c.id and s.state in (${literalList(STEP_TRANSITIONS.enqueue.from)})
      returning s.id, s.task_id, s.name, s.handler, s.handler_config, s.attempts,
                s.attempt_base + s.max_attempts as max_attempts, s.timeout_ms,
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
             null::text as correlation_id, null::text as result,
             case when c.parent_count > 0 then ${parentList(sql`c.id`)} end as parents, null::int as position,
             null::bigint as max_event_id, null::bigint as left_by_budget, null::text as notified
      from claimed c
      order by c.priority desc, c.ready_at, c.id
    ) steps
    union all
    select 'nodes', null, null, null, null, null, null, null, null, null, null, null, null,
           null, null, null, null, null, x.nodes, null, null, null, null, null
    from (
      select json_agg(json_build_array(n.id, n.task_id, n.name, n.position, n.parents, n.result))::text as nodes
      from nodes n where n.parents is not null and n.task_id in (select task_id from claimed where parent_count > 0)
    ) x
    where x.nodes is not null
    union all
    select 'whole', null, x.task_id, null, null, null, null, null, null, null, null, null, null,
           null, null, null, null, null, x.results, null, null, null, null, null
    from (
      select n.task_id,
             '{' || string_agg(to_json(n.name)::text || ': ' || coalesce(n.result, 'null'), ', ' order by n.position) || '}' as results
      from nodes n where n.parents is null and n.task_id in (select task_id from claimed where parent_count > 0)
      group by n.task_id
    ) x
    union all
    select 'task', null, k.id, null, null, null, null, null, null, null, null, null, null,
           k.namespace, k.name, k.version, k.context::text, k.correlation_id, null, null, null, null, null, null
    from counted k
    union all
    select 'event', null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null, null,
           null, null, null, e.max_id,
           (select count(*) from candidates) - (select n from chosen),
           case when e.max_id is not null then pg_notify(${EVENTS_CHANNEL}, e.max_id::text)::text end
    from (select max(id) as max_id from events) e`.execute(db);
  return collectClaim(rows);
}

function collectClaim(rows: readonly ClaimRow[]): ClaimResult {
  const tasks = new Map<string, ClaimRow>();
  const nodes: AncestorNode[] = [];
  const whole = new Map<string, string>();
  let maxEventId = 0;
  let leftByBudget = 0;
  for (const r of rows) {
    if (r.kind === 'task' && r.task_id) tasks.set(r.task_id, r);
    else if (r.kind === 'nodes' && r.result) for (const n of JSON.parse(r.result) as NodeTuple[]) nodes.push(nodeOf(n));
    else if (r.kind === 'whole' && r.task_id && r.result) whole.set(r.task_id, r.result);
    else if (r.kind === 'event') {
      maxEventId = Number(r.max_event_id ?? 0);
      leftByBudget = Number(r.left_by_budget ?? 0);
    }
  }
  const stepRows = rows.filter((r) => r.kind === 'step');
  const linked = stepRows.filter((r) => !whole.has(r.task_id as string));
  const ancestors = buildAncestorResults(
    linked.map((r) => ({ id: r.step_id as string, taskId: r.task_id as string, parents: splitIds(r.parents) })),
    nodes,
  );
  const steps = stepRows.map((r): ClaimedStep => {
    const task = tasks.get(r.task_id as string);
    if (!task) throw new Error(`claimed step ${r.step_id} of task ${r.task_id} without its task row`);
    return {
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
      ancestorResultsJson: (r.parent_count ? whole.get(r.task_id as string) : undefined) ?? ancestors.get(r.step_id as string) ?? '{}',
      maxAttempts: Number(r.max_attempts),
      timeoutMs: r.timeout_ms,
      deadline: r.deadline_at,
      leaseExpiresAt: r.lease_expires_at as Date,
      parentCount: Number(r.parent_count),
      priority: Number(r.step_priority),
    };
  });
  return { steps, maxEventId, leftByBudget };
}

function nodeOf([id, taskId, name, position, parents, resultJson]: NodeTuple): AncestorNode {
  return { id, taskId, name, position, resultJson, parents: splitIds(parents) };
}

function splitIds(csv: string | null): string[] {
  return csv ? csv.split(',') : [];
}
