/**
 * Operator reads (AdminService): system health counts, analytics, a step's audit
 * trail, and worker sessions with their in-flight counts. The counting is done by the
 * SQL functions in `sql/` (`system_health_counts`, `analytics_*`); this file types
 * their rows.
 */
import { sql } from 'kysely';
import { NotFoundError, ValidationError } from '../domain/errors.js';
import { isUuid } from '../domain/ids.js';
import type { StepState } from '../domain/step-state.js';
import { LEASED_STEP_STATES, STEP_STATES } from '../domain/step-state.js';
import type { TaskState } from '../domain/task-state.js';
import { TASK_STATES } from '../domain/task-state.js';
import type { WorkerSessionState } from './schema.js';
import type { SessionRecord } from './sessions.js';
import type { Executor } from './sql-helpers.js';
import { literalList } from './sql-helpers.js';
import { listStepTransitions } from './transitions.js';
import type { StepTransitionRecord } from './transitions.js';

/** System-wide counts at one instant (`system_health_counts(now)`). */
export interface SystemHealth {
  readonly at: Date;
  readonly tasksTotal: number;
  /** Every task state, 0 when none. */
  readonly tasks: Readonly<Record<TaskState, number>>;
  readonly stepsTotal: number;
  /** Every step state, 0 when none. */
  readonly steps: Readonly<Record<StepState, number>>;
  /** Steps claimable now. */
  readonly readySteps: number;
  /** The earliest `ready_at` among them; null when none. */
  readonly oldestReadyAt: Date | null;
  /** How long that step has been waiting, in ms; null when none. */
  readonly oldestReadyAgeMs: number | null;
  readonly sessions: {
    /** State active and not expired (connected or resumable). */
    readonly active: number;
    /** State draining and not expired. */
    readonly draining: number;
    /** With a stream attached, active or draining, not expired. */
    readonly connected: number;
    /** Sum of max_in_flight over connected sessions. */
    readonly inFlightCapacity: number;
  };
}

/** Counts of tasks and steps in every state, ready steps and live sessions at `now`. */
export async function getSystemHealth(db: Executor, now: Date): Promise<SystemHealth> {
  const { rows } = await sql<Record<string, number | Date | null>>`
    select * from system_health_counts(${now}::timestamptz)`.execute(db);
  const r = rows[0] ?? {};
  const n = (key: string): number => Number(r[key] ?? 0);
  const tasks = {} as Record<TaskState, number>;
  for (const s of TASK_STATES) tasks[s] = n(`tasks_${s}`);
  const steps = {} as Record<StepState, number>;
  for (const s of STEP_STATES) steps[s] = n(`steps_${s}`);
  const oldest = r.oldest_ready_at;
  return {
    at: now,
    tasksTotal: n('tasks_total'),
    tasks,
    stepsTotal: n('steps_total'),
    steps,
    readySteps: n('ready_steps'),
    oldestReadyAt: oldest instanceof Date ? oldest : null,
    oldestReadyAgeMs: r.oldest_ready_age_ms === null || r.oldest_ready_age_ms === undefined ? null : n('oldest_ready_age_ms'),
    sessions: {
      active: n('sessions_active'),
      draining: n('sessions_draining'),
      connected: n('sessions_connected'),
      inFlightCapacity: n('sessions_in_flight_capacity'),
    },
  };
}

/** Tasks and steps that finished in one minute (`analytics_throughput`). */
export interface ThroughputMinute {
  readonly minute: Date;
  /** Reached any terminal state. */
  readonly tasksFinished: number;
  /** Of those, complete. */
  readonly tasksCompleted: number;
  readonly stepsFinished: number;
  readonly stepsCompleted: number;
}

/** A completed step and how long its last attempt ran (`analytics_slowest_steps`). */
export interface SlowStep {
  readonly stepId: string;
  readonly taskId: string;
  readonly name: string;
  readonly handler: string;
  readonly namespace: string;
  readonly taskName: string;
  readonly attempts: number;
  readonly durationMs: number;
  readonly startedAt: Date;
  readonly completedAt: Date;
}

/** A completed task and how long it took from creation (`analytics_slowest_tasks`). */
export interface SlowTask {
  readonly taskId: string;
  readonly namespace: string;
  readonly name: string;
  readonly version: string;
  readonly stepsTotal: number;
  readonly durationMs: number;
  readonly createdAt: Date;
  readonly completedAt: Date;
}

/** Options of {@link getAnalytics}. */
export interface AnalyticsOptions {
  /** Start of the window. */
  readonly since: Date;
  /** End of the window (the engine's now); rates are per minute of `since..now`. */
  readonly now: Date;
  /** How many slowest steps and tasks: absent or 0 = 10, larger than 100 = 100. */
  readonly limit?: number | null;
}

/** Throughput and the slowest steps and tasks of one window. */
export interface Analytics {
  readonly since: Date;
  readonly until: Date;
  /** Minutes with activity, oldest first. */
  readonly throughput: readonly ThroughputMinute[];
  readonly tasksFinished: number;
  readonly stepsFinished: number;
  /** tasksFinished per minute of the window (0 for an empty window). */
  readonly tasksPerMinute: number;
  readonly stepsPerMinute: number;
  /** Slowest first. */
  readonly slowestSteps: readonly SlowStep[];
  /** Slowest first. */
  readonly slowestTasks: readonly SlowTask[];
}

/** Default and largest `limit` of {@link getAnalytics}. */
export const ANALYTICS_DEFAULT_LIMIT = 10;
export const ANALYTICS_MAX_LIMIT = 100;

function analyticsLimit(limit: number | null | undefined): number {
  if (limit === undefined || limit === null || limit === 0) return ANALYTICS_DEFAULT_LIMIT;
  if (!Number.isInteger(limit) || limit < 0) {
    throw new ValidationError('limit must be a positive integer', [{ path: 'limit', message: 'must be a positive integer' }], 'INVALID_LIMIT');
  }
  return Math.min(limit, ANALYTICS_MAX_LIMIT);
}

/** Throughput per minute since `since`, with average rates, and the slowest steps and tasks. */
export async function getAnalytics(db: Executor, options: AnalyticsOptions): Promise<Analytics> {
  const { since, now } = options;
  if (Number.isNaN(since.getTime())) throw new ValidationError('since is not a valid time', [{ path: 'since', message: 'not a valid time' }]);
  const limit = analyticsLimit(options.limit);
  const throughput = await sql<{
    minute: Date; tasks_finished: number; tasks_completed: number; steps_finished: number; steps_completed: number;
  }>`select * from analytics_throughput(${since}::timestamptz)`.execute(db);
  const steps = await sql<{
    step_id: string; task_id: string; name: string; handler: string; namespace: string; task_name: string;
    attempts: number; duration_ms: number; started_at: Date; completed_at: Date;
  }>`select * from analytics_slowest_steps(${since}::timestamptz, ${limit}::int)`.execute(db);
  const tasks = await sql<{
    task_id: string; namespace: string; name: string; version: string; steps_total: number; duration_ms: number;
    created_at: Date; completed_at: Date;
  }>`select * from analytics_slowest_tasks(${since}::timestamptz, ${limit}::int)`.execute(db);
  const minutes = throughput.rows.map((r) => ({
    minute: r.minute,
    tasksFinished: Number(r.tasks_finished),
    tasksCompleted: Number(r.tasks_completed),
    stepsFinished: Number(r.steps_finished),
    stepsCompleted: Number(r.steps_completed),
  }));
  const tasksFinished = minutes.reduce((sum, m) => sum + m.tasksFinished, 0);
  const stepsFinished = minutes.reduce((sum, m) => sum + m.stepsFinished, 0);
  const windowMinutes = (now.getTime() - since.getTime()) / 60_000;
  const rate = (count: number): number => (windowMinutes > 0 ? count / windowMinutes : 0);
  return {
    since,
    until: now,
    throughput: minutes,
    tasksFinished,
    stepsFinished,
    tasksPerMinute: rate(tasksFinished),
    stepsPerMinute: rate(stepsFinished),
    slowestSteps: steps.rows.map((r) => ({
      stepId: r.step_id,
      taskId: r.task_id,
      name: r.name,
      handler: r.handler,
      namespace: r.namespace,
      taskName: r.task_name,
      attempts: r.attempts,
      durationMs: Number(r.duration_ms),
      startedAt: r.started_at,
      completedAt: r.completed_at,
    })),
    slowestTasks: tasks.rows.map((r) => ({
      taskId: r.task_id,
      namespace: r.namespace,
      name: r.name,
      version: r.version,
      stepsTotal: r.steps_total,
      durationMs: Number(r.duration_ms),
      createdAt: r.created_at,
      completedAt: r.completed_at,
    })),
  };
}

/**
 * Every recorded transition of a step, oldest first (from, to, event, attempt, reason,
 * metadata, at). Throws `NotFoundError` (`STEP_NOT_FOUND`) when the step does not exist
 * and has no recorded transitions (an id that is not a UUID included).
 */
export async function getStepAudit(db: Executor, stepId: string): Promise<StepTransitionRecord[]> {
  if (!isUuid(stepId)) throw new NotFoundError('step', stepId, 'STEP_NOT_FOUND');
  const transitions = await listStepTransitions(db, stepId);
  if (transitions.length > 0) return transitions;
  const { rows } = await sql<{ found: boolean }>`
    select exists (select 1 from workflow_steps where id = ${stepId}::uuid) as found`.execute(db);
  if (!rows[0]?.found) throw new NotFoundError('step', stepId, 'STEP_NOT_FOUND');
  return transitions;
}

/** A worker session with the number of steps it holds now. */
export interface WorkerSessionInfo extends SessionRecord {
  /** Steps enqueued or in progress under this session. */
  readonly inFlight: number;
}

/** Options of {@link listWorkerSessions}. */
export interface ListWorkerSessionsOptions {
  /** The engine's now: sessions past `expires_at` count as expired. */
  readonly now: Date;
  /** Also list closed and expired sessions still retained (default false). */
  readonly includeExpired?: boolean;
  /** Only sessions serving this namespace (sessions declaring no namespace serve all). */
  readonly namespace?: string | null;
  /** Only sessions declaring this handler. */
  readonly handler?: string | null;
  /** At most this many sessions, newest first (default 1,000). */
  readonly limit?: number;
}

interface SessionInfoRow {
  id: string;
  worker_name: string;
  language: string;
  sdk_version: string;
  handlers: string[];
  namespaces: string[];
  labels: Record<string, string> | null;
  max_in_flight: number;
  instance_id: string | null;
  state: WorkerSessionState;
  connected: boolean;
  last_heartbeat_at: Date;
  expires_at: Date;
  created_at: Date;
  updated_at: Date;
  in_flight: number;
}

/**
 * Worker sessions, newest first, each with its in-flight count (one probe of
 * `workflow_steps_session_idx` per session). By default only live ones: active or
 * draining and not expired at `now` (connected, or disconnected and still resumable).
 */
export async function listWorkerSessions(db: Executor, options: ListWorkerSessionsOptions): Promise<WorkerSessionInfo[]> {
  const live = options.includeExpired ? sql`true` : sql`w.state in ('active', 'draining') and w.expires_at > ${options.now}::timestamptz`;
  const namespace = options.namespace
    ? sql`(w.namespaces @> array[${options.namespace}]::text[] or cardinality(w.namespaces) = 0)`
    : sql`true`;
  const handler = options.handler ? sql`w.handlers @> array[${options.handler}]::text[]` : sql`true`;
  const limit = Math.max(1, Math.min(options.limit ?? 1000, 10_000));
  const { rows } = await sql<SessionInfoRow>`
    select w.id, w.worker_name, w.language, w.sdk_version, w.handlers, w.namespaces, w.labels, w.max_in_flight,
           w.instance_id, w.state, w.connected, w.last_heartbeat_at, w.expires_at, w.created_at, w.updated_at,
           (select count(*) from workflow_steps s
            where s.session_id = w.id and s.state in (${literalList(LEASED_STEP_STATES)}))::int as in_flight
    from worker_sessions w
    where ${live} and ${namespace} and ${handler}
    order by w.created_at desc, w.id desc
    limit ${limit}::int`.execute(db);
  return rows.map((r) => ({
    id: r.id,
    workerName: r.worker_name,
    language: r.language,
    sdkVersion: r.sdk_version,
    handlers: r.handlers,
    namespaces: r.namespaces,
    labels: r.labels ?? {},
    maxInFlight: r.max_in_flight,
    instanceId: r.instance_id,
    state: r.state,
    connected: r.connected,
    lastHeartbeatAt: r.last_heartbeat_at,
    expiresAt: r.expires_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    inFlight: r.in_flight,
  }));
}
