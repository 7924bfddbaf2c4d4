/**
 * The harness's own engine handle on the bench database: migrations, template
 * registration and task creation call the engine directly (`TemplateRegistry`,
 * `TaskManager.createTask`) over the same PostgreSQL the server uses — the same code
 * path CreateTask runs behind gRPC, without the RPC. Readiness and execution-context
 * timings also run here (`step_readiness`, `task_execution_context`, direct SQL).
 */
import { sql } from 'kysely';
import pino from 'pino';
import { migrationsDir, sqlDir } from '../../src/config/paths.js';
import { systemClock } from '../../src/domain/clock.js';
import { DEFAULT_RETRY_POLICY } from '../../src/domain/retry-policy.js';
import { parseTemplateDocument } from '../../src/domain/template-document.js';
import { TaskManager } from '../../src/engine/task-manager.js';
import type { CreateTaskRequest } from '../../src/engine/task-manager.js';
import { TemplateRegistry } from '../../src/engine/template-registry.js';
import type { Database } from '../../src/store/database.js';
import { openDatabase } from '../../src/store/database.js';
import { migrate } from '../../src/store/migrator.js';
import type { TemplateDocument } from './templates.js';

/** The harness's engine objects over one database. */
export interface BenchEngine {
  readonly database: Database;
  readonly registry: TemplateRegistry;
  readonly tasks: TaskManager;
  close(): Promise<void>;
}

/** Opens `url`, migrates it, and builds the registry and task manager. */
export async function openBenchEngine(url: string, poolSize = 8): Promise<BenchEngine> {
  const logger = pino({ level: 'silent' });
  const database = await openDatabase({ url, poolSize, applicationName: 'tasker-bench', logger, statementTimeoutMs: 0 });
  await migrate(database, { migrationsDir, sqlDir, logger });
  const registry = new TemplateRegistry({ db: database.db, clock: systemClock, logger });
  const tasks = new TaskManager({ db: database.db, templates: registry, clock: systemClock, logger });
  return { database, registry, tasks, close: () => database.close() };
}

/** Registers a template document; returns how long parsing, validation and storing took (ms). */
export async function registerTemplate(engine: BenchEngine, doc: TemplateDocument): Promise<number> {
  const started = performance.now();
  const template = parseTemplateDocument(doc, { retry: DEFAULT_RETRY_POLICY });
  await engine.registry.register(template);
  return performance.now() - started;
}

/** What {@link createTasks} did. */
export interface CreatedTasks {
  readonly taskIds: string[];
  readonly wallMs: number;
  readonly perSecond: number;
}

/**
 * Creates `count` tasks of `template` with `concurrency` creations in flight
 * (each one `TaskManager.createTask`: its own transaction and commit).
 */
export async function createTasks(
  engine: BenchEngine,
  template: { namespace: string; name: string },
  count: number,
  concurrency: number,
): Promise<CreatedTasks> {
  const taskIds: string[] = new Array<string>(count);
  let next = 0;
  const request: CreateTaskRequest = { template, context: {} };
  const started = performance.now();
  const lane = async () => {
    for (;;) {
      const i = next++;
      if (i >= count) return;
      taskIds[i] = (await engine.tasks.createTask(request)).task.id;
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, count)) }, lane));
  const wallMs = performance.now() - started;
  return { taskIds, wallMs, perSecond: count / (wallMs / 1000) };
}

/** Runs `query` `repeat` times; returns every duration (ms). */
export async function timeRepeated(repeat: number, query: () => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < repeat; i++) {
    const started = performance.now();
    await query();
    times.push(performance.now() - started);
  }
  return times;
}

/** `step_readiness(task, now)` read in full, as a client of the SQL function would. */
export function stepReadinessQuery(engine: BenchEngine, taskId: string): () => Promise<unknown> {
  return () => sql`select * from step_readiness(${taskId}::uuid, ${new Date()}::timestamptz)`.execute(engine.database.db);
}

/** `task_execution_context(task, now)`. */
export function executionContextQuery(engine: BenchEngine, taskId: string): () => Promise<unknown> {
  return () => sql`select * from task_execution_context(${taskId}::uuid, ${new Date()}::timestamptz)`.execute(engine.database.db);
}

/** EXPLAIN (ANALYZE, BUFFERS) of `select * from <fn>(task, now)`, as text lines. */
export async function explainFunction(engine: BenchEngine, fn: 'step_readiness' | 'task_execution_context', taskId: string): Promise<string[]> {
  const name = sql.raw(fn);
  const { rows } = await sql<{ 'QUERY PLAN': string }>`
    explain (analyze, buffers) select * from ${name}(${taskId}::uuid, ${new Date()}::timestamptz)`.execute(engine.database.db);
  return rows.map((r) => r['QUERY PLAN']);
}
