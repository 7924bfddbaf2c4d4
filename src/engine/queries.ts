/**
 * The read service the gRPC layer calls for TaskService.GetTask/ListTasks and the
 * AdminService views. It owns no state: it binds the store reads to one Database and
 * one Clock (every "now" comes from the clock, never from SQL now()), and retries a
 * read that fails transiently (reads are idempotent).
 */
import type { Clock } from '../domain/clock.js';
import type { Analytics, SystemHealth, WorkerSessionInfo } from '../store/admin-reads.js';
import { getAnalytics, getStepAudit, getSystemHealth, listWorkerSessions } from '../store/admin-reads.js';
import type { Database } from '../store/database.js';
import type { ExecutionContext, StepReadinessRow } from '../store/readiness-reads.js';
import { getExecutionContext, getStepReadiness } from '../store/readiness-reads.js';
import type { ListTasksOptions, TaskDetails, TaskPage } from '../store/task-reads.js';
import { getTaskDetails, listTasks } from '../store/task-reads.js';
import { withTransientRetry } from '../store/transient.js';
import type { StepTransitionRecord } from '../store/transitions.js';

/** Default analytics window when no `since` is given: the last hour. */
export const DEFAULT_ANALYTICS_WINDOW_MS = 60 * 60 * 1000;

/** Read-only queries over tasks, steps, sessions and system counts. */
export class TaskQueries {
  readonly #database: Database;
  readonly #clock: Clock;

  constructor(database: Database, clock: Clock) {
    this.#database = database;
    this.#clock = clock;
  }

  #read<T>(fn: () => Promise<T>): Promise<T> {
    return withTransientRetry(fn);
  }

  /** One task with steps, edges and execution context; `NotFoundError` TASK_NOT_FOUND. */
  getTask(taskId: string, options: { includeResults?: boolean } = {}): Promise<TaskDetails> {
    return this.#read(() =>
      getTaskDetails(this.#database.db, taskId, { includeResults: options.includeResults ?? true, now: this.#clock.now() }),
    );
  }

  /** One page of tasks, newest first; `ValidationError` INVALID_PAGE_TOKEN / INVALID_PAGE_SIZE. */
  listTasks(options: ListTasksOptions = {}): Promise<TaskPage> {
    return this.#read(() => listTasks(this.#database.db, options));
  }

  /** `step_readiness()` of a task now: every step in template order; empty for an unknown task. */
  getStepReadiness(taskId: string): Promise<StepReadinessRow[]> {
    return this.#read(() => getStepReadiness(this.#database.db, taskId, this.#clock.now()));
  }

  /** `task_execution_context()` of a task now, or null for an unknown task. */
  getExecutionContext(taskId: string): Promise<ExecutionContext | null> {
    return this.#read(() => getExecutionContext(this.#database.db, taskId, this.#clock.now()));
  }

  /** Every transition of a step, oldest first; `NotFoundError` STEP_NOT_FOUND. */
  getStepAudit(stepId: string): Promise<StepTransitionRecord[]> {
    return this.#read(() => getStepAudit(this.#database.db, stepId));
  }

  /** System-wide counts now. */
  getSystemHealth(): Promise<SystemHealth> {
    return this.#read(() => getSystemHealth(this.#database.db, this.#clock.now()));
  }

  /** Throughput and slowest steps/tasks from `since` (default: one hour ago) to now. */
  getAnalytics(options: { since?: Date | null; limit?: number | null } = {}): Promise<Analytics> {
    const now = this.#clock.now();
    const since = options.since ?? new Date(now.getTime() - DEFAULT_ANALYTICS_WINDOW_MS);
    return this.#read(() => getAnalytics(this.#database.db, { since, now, limit: options.limit }));
  }

  /** Worker sessions with in-flight counts, newest first; live ones unless `includeExpired`. */
  listWorkers(
    options: { includeExpired?: boolean; namespace?: string | null; handler?: string | null } = {},
  ): Promise<WorkerSessionInfo[]> {
    return this.#read(() => listWorkerSessions(this.#database.db, { ...options, now: this.#clock.now() }));
  }
}
