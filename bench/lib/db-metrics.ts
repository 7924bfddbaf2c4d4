/**
 * Figures read back from the database after (or while) a scenario runs. Every time
 * comes from the rows the engine wrote: `tasker_events.created_at` of the first
 * `step.enqueued` and the last `step.completed`, `workflow_steps.completed_at`,
 * `tasks.created_at` / `completed_at` (all from the server's clock).
 */
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { DB } from '../../src/store/schema.js';
import { classify } from './explain-log.js';

/** Task counts of a namespace (optionally one template name). */
export interface TaskProgress {
  readonly total: number;
  readonly complete: number;
  /** error, cancelled, blocked_by_failures or resolved_manually: will not complete by itself. */
  readonly failed: number;
}

/** Counts the tasks of `namespace` (and `name`) by outcome. */
export async function taskProgress(db: Kysely<DB>, namespace: string, name?: string): Promise<TaskProgress> {
  const byName = name ? sql`and name = ${name}` : sql``;
  const { rows } = await sql<{ total: string; complete: string; failed: string }>`
    select count(*) as total,
           count(*) filter (where state = 'complete') as complete,
           count(*) filter (where state in ('error', 'cancelled', 'blocked_by_failures', 'resolved_manually')) as failed
    from tasks where namespace = ${namespace} ${byName}`.execute(db);
  const r = rows[0];
  return { total: Number(r?.total ?? 0), complete: Number(r?.complete ?? 0), failed: Number(r?.failed ?? 0) };
}

/**
 * True while a task of `namespace` (and `name`) is still active. Probes
 * `tasks_state_idx` per active state and stops at the first row, so polling it costs
 * the measured database next to nothing (a count over every task would not).
 */
async function anyActive(db: Kysely<DB>, namespace: string, name?: string): Promise<boolean> {
  const byName = name ? sql`and name = ${name}` : sql``;
  const { rows } = await sql<{ active: boolean }>`
    select exists (select 1 from tasks where state in ('pending', 'in_progress', 'waiting_for_retry')
                   and namespace = ${namespace} ${byName}) as active`.execute(db);
  return rows[0]?.active === true;
}

/**
 * Waits until no task of `namespace` (and `name`) is active any more, polling every
 * `pollMs`, then checks that `expected` of them are complete. Rejects when one
 * failed, `timeoutMs` passes or `check` throws (the server died), naming the progress.
 */
export async function waitForTasks(
  db: Kysely<DB>,
  options: { namespace: string; name?: string; expected: number; timeoutMs: number; pollMs?: number; check?: () => void },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  const what = `${options.namespace}/${options.name ?? '*'}`;
  while (await anyActive(db, options.namespace, options.name)) {
    options.check?.();
    if (Date.now() > deadline) {
      const p = await taskProgress(db, options.namespace, options.name);
      throw new Error(`timed out: ${p.complete} of ${options.expected} tasks of ${what} complete after ${options.timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, options.pollMs ?? 200));
  }
  const p = await taskProgress(db, options.namespace, options.name);
  if (p.failed > 0) throw new Error(`${p.failed} task(s) of ${what} failed or were cancelled`);
  if (p.complete < options.expected) throw new Error(`only ${p.complete} of ${options.expected} tasks of ${what} complete`);
}

/** The execution window of a set of tasks, from their events. */
export interface RunWindow {
  /** `step.enqueued` events (claims, every attempt). */
  readonly enqueued: number;
  readonly completed: number;
  readonly firstEnqueuedAt: Date | null;
  readonly lastCompletedAt: Date | null;
  /** lastCompletedAt - firstEnqueuedAt. */
  readonly windowMs: number | null;
  /** completed / window. */
  readonly stepsPerSecond: number | null;
}

/** First `step.enqueued` to last `step.completed` of the tasks of `namespace` (and `taskName`). */
export async function runWindow(db: Kysely<DB>, namespace: string, taskName?: string): Promise<RunWindow> {
  const byName = taskName ? sql`and task_name = ${taskName}` : sql``;
  const { rows } = await sql<{ enqueued: string; completed: string; first_enqueued: Date | null; last_completed: Date | null }>`
    select count(*) filter (where event_type = 'step.enqueued') as enqueued,
           count(*) filter (where event_type = 'step.completed') as completed,
           min(created_at) filter (where event_type = 'step.enqueued') as first_enqueued,
           max(created_at) filter (where event_type = 'step.completed') as last_completed
    from tasker_events
    where namespace = ${namespace} ${byName} and event_type in ('step.enqueued', 'step.completed')`.execute(db);
  const r = rows[0];
  const first = r?.first_enqueued ?? null;
  const last = r?.last_completed ?? null;
  const completed = Number(r?.completed ?? 0);
  const windowMs = first && last ? last.getTime() - first.getTime() : null;
  return {
    enqueued: Number(r?.enqueued ?? 0),
    completed,
    firstEnqueuedAt: first,
    lastCompletedAt: last,
    windowMs,
    stepsPerSecond: windowMs && windowMs > 0 ? completed / (windowMs / 1000) : null,
  };
}

/** One step of a finished task, with its parents: what the latency hops are computed from. */
export interface StepTiming {
  readonly stepId: string;
  readonly taskId: string;
  readonly name: string;
  readonly parentIds: readonly string[];
  readonly completedAt: Date | null;
  /** The first `step.enqueued` event of the step (its first claim). */
  readonly enqueuedAt: Date | null;
  readonly taskCreatedAt: Date;
  readonly taskCompletedAt: Date | null;
}

/** Every step of `namespace`'s tasks with completion time and parents. */
export async function stepTimings(db: Kysely<DB>, namespace: string): Promise<StepTiming[]> {
  const { rows } = await sql<{
    id: string;
    task_id: string;
    name: string;
    completed_at: Date | null;
    enqueued_at: Date | null;
    task_created_at: Date;
    task_completed_at: Date | null;
    parents: string[] | null;
  }>`
    select s.id, s.task_id, s.name, s.completed_at, t.created_at as task_created_at, t.completed_at as task_completed_at,
           (select array_agg(e.from_step_id::text) from workflow_step_edges e where e.to_step_id = s.id) as parents,
           (select min(v.created_at) from tasker_events v
             where v.task_id = s.task_id and v.step_id = s.id and v.event_type = 'step.enqueued') as enqueued_at
    from workflow_steps s join tasks t on t.id = s.task_id
    where t.namespace = ${namespace}`.execute(db);
  return rows.map((r) => ({
    stepId: r.id,
    taskId: r.task_id,
    name: r.name,
    parentIds: r.parents ?? [],
    completedAt: r.completed_at,
    enqueuedAt: r.enqueued_at,
    taskCreatedAt: r.task_created_at,
    taskCompletedAt: r.task_completed_at,
  }));
}

/** One statement's share of the database's time (pg_stat_statements). */
export interface StatementStat {
  /** What the statement is (see `classify` in explain-log.ts). */
  readonly kind: string;
  readonly query: string;
  readonly calls: number;
  readonly totalMs: number;
  readonly meanMs: number;
  /** Planning time in all (pg_stat_statements.track_planning): statements are planned on every call. */
  readonly planMs: number;
  readonly rows: number;
  readonly sharedBlksHit: number;
  readonly sharedBlksRead: number;
}

/** Resets pg_stat_statements and the WAL counters; false when the extension is not there. */
export async function resetStatementStats(db: Kysely<DB>): Promise<boolean> {
  try {
    await sql`select pg_stat_statements_reset()`.execute(db);
    await sql`select pg_stat_reset_shared('wal')`.execute(db);
    return true;
  } catch {
    return false;
  }
}

/** The statements that took the most execution time since the reset, in this database. */
export async function topStatements(db: Kysely<DB>, limit = 8): Promise<StatementStat[] | null> {
  try {
    const { rows } = await sql<{
      query: string;
      calls: string;
      total: number;
      mean: number;
      plan: number;
      rows: string;
      hit: string;
      read: string;
    }>`
      select regexp_replace(query, '\\s+', ' ', 'g') as query, calls, total_exec_time as total, mean_exec_time as mean,
             total_plan_time as plan, rows, shared_blks_hit as hit, shared_blks_read as read
      from pg_stat_statements
      where dbid = (select oid from pg_database where datname = current_database())
      order by total_exec_time + total_plan_time desc limit ${limit}`.execute(db);
    return rows.map((r) => ({
      kind: classify(r.query),
      query: r.query.length > 240 ? `${r.query.slice(0, 240)}…` : r.query,
      calls: Number(r.calls),
      totalMs: Number(r.total),
      meanMs: Number(r.mean),
      planMs: Number(r.plan),
      rows: Number(r.rows),
      sharedBlksHit: Number(r.hit),
      sharedBlksRead: Number(r.read),
    }));
  } catch {
    return null;
  }
}

/** WAL written and WAL flushes (fsyncs) since the reset: how well commits were grouped. */
export async function walStats(db: Kysely<DB>): Promise<{ records: number; bytes: number; syncs: number; writes: number } | null> {
  try {
    const { rows } = await sql<{ wal_records: string; wal_bytes: string; wal_sync: string; wal_write: string }>`
      select wal_records, wal_bytes, wal_sync, wal_write from pg_stat_wal`.execute(db);
    const r = rows[0];
    return r ? { records: Number(r.wal_records), bytes: Number(r.wal_bytes), syncs: Number(r.wal_sync), writes: Number(r.wal_write) } : null;
  } catch {
    return null;
  }
}

/** A few failed steps of a task with their last error, for a failure message. */
async function failedSteps(db: Kysely<DB>, taskId: string): Promise<string> {
  const { rows } = await sql<{ name: string; attempts: number; last_error: unknown }>`
    select name, attempts, last_error from workflow_steps where task_id = ${taskId}::uuid and state = 'error' limit 3`.execute(db);
  return rows.length ? `failed steps: ${rows.map((r) => `${r.name} (attempt ${r.attempts}): ${JSON.stringify(r.last_error)}`).join('; ')}` : 'no step in error';
}

/**
 * Waits until task `taskId` is complete, polling every `pollMs`; rejects if it ends
 * otherwise, `timeoutMs` passes, or `check` throws.
 */
export async function waitForTask(db: Kysely<DB>, taskId: string, timeoutMs: number, check?: () => void, pollMs = 200): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    check?.();
    const { rows } = await sql<{ state: string }>`select state from tasks where id = ${taskId}::uuid`.execute(db);
    const state = rows[0]?.state;
    if (state === 'complete') return;
    if (state === undefined || ['error', 'cancelled', 'blocked_by_failures', 'resolved_manually'].includes(state)) {
      throw new Error(`task ${taskId} is ${state ?? 'missing'}, not complete; ${await failedSteps(db, taskId)}`);
    }
    if (Date.now() > deadline) throw new Error(`task ${taskId} still ${state} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
