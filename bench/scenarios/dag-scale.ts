/**
 * `dag-scale`: one mixed-DAG task of 1,000 steps and one of 10,000 (see
 * `mixedDag`), engine-level: template registration, task creation
 * (`TaskManager.createTask`, three creations, the extra two cancelled — which is
 * timed too), `step_readiness` and `task_execution_context` (direct SQL, ten runs
 * each, with one EXPLAIN (ANALYZE, BUFFERS) kept), then the time for Node workers to
 * run every step with no-op handlers.
 */
import { sql } from 'kysely';
import { runWindow, waitForTask } from '../lib/db-metrics.js';
import type { BenchEngine } from '../lib/engine.js';
import { executionContextQuery, explainFunction, registerTemplate, stepReadinessQuery, timeRepeated } from '../lib/engine.js';
import type { Figure, ScenarioResult, TargetCheck } from '../lib/report.js';
import { checkTarget } from '../lib/report.js';
import type { Stack } from '../lib/stack.js';
import { median, round, summarize } from '../lib/stats.js';
import { mixedDag } from '../lib/templates.js';

const CREATIONS = 3;
const QUERY_RUNS = 10;
async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - started };
}

async function taskCompletedAt(engine: BenchEngine, taskId: string): Promise<Date | null> {
  const { rows } = await sql<{ completed_at: Date | null }>`select completed_at from tasks where id = ${taskId}::uuid`.execute(engine.database.db);
  return rows[0]?.completed_at ?? null;
}

/** Measures one DAG size; returns its figures, targets and details. */
async function measureSize(stack: Stack, size: number): Promise<{ figures: Figure[]; targets: TargetCheck[]; details: Record<string, unknown> }> {
  const { engine, namespace, ctx } = stack;
  const { options } = ctx;
  const { doc, edges, layers } = mixedDag(namespace, size);
  const registerMs = await registerTemplate(engine, doc);
  const template = { namespace, name: doc.name };
  const creations: number[] = [];
  const taskIds: string[] = [];
  for (let i = 0; i < CREATIONS; i++) {
    const { value, ms } = await timed(() => engine.tasks.createTask({ template, context: {} }));
    creations.push(ms);
    taskIds.push(value.task.id);
  }
  const [taskId, ...extra] = taskIds as [string, ...string[]];
  const cancels: number[] = [];
  for (const id of extra) cancels.push((await timed(() => engine.tasks.cancelTask(id, 'bench: extra creation'))).ms);
  ctx.log(`${size} steps (${edges} edges, ${layers} layers): created in ${creations.map((m) => Math.round(m)).join(', ')} ms`);
  const readinessFresh = await timeRepeated(QUERY_RUNS, stepReadinessQuery(engine, taskId));
  const contextFresh = await timeRepeated(QUERY_RUNS, executionContextQuery(engine, taskId));
  const readinessPlan = await explainFunction(engine, 'step_readiness', taskId);
  const contextPlan = await explainFunction(engine, 'task_execution_context', taskId);

  await stack.resetDbStats();
  const cpu = stack.cpuWindow();
  // The workers keep grpc-js's default 4 MiB receive limit: the server bounds each
  // StepBatch by bytes (workers.max_batch_bytes), however many ancestor results it carries.
  const workers = await stack.startWorkers('node', options.workers ?? 2, { concurrency: options.concurrency ?? 256 });
  const started = performance.now();
  await waitForTask(engine.database.db, taskId, Math.max(120_000, size * 30), () => stack.server.assertRunning());
  const wallMs = performance.now() - started;
  const cpuUse = cpu.end(wallMs);
  const { statements, wal } = await stack.dbStats();
  await stack.stopWorkers(workers);
  const window = await runWindow(engine.database.db, namespace, doc.name);
  const completedAt = await taskCompletedAt(engine, taskId);
  const runMs = completedAt && window.firstEnqueuedAt ? completedAt.getTime() - window.firstEnqueuedAt.getTime() : null;
  const readinessDone = await timeRepeated(QUERY_RUNS, stepReadinessQuery(engine, taskId));
  const contextDone = await timeRepeated(QUERY_RUNS, executionContextQuery(engine, taskId));

  const label = `${size.toLocaleString('en-US')} steps`;
  const figures: Figure[] = [
    { name: `${label}: edges / layers`, value: `${edges} / ${layers}` },
    { name: `${label}: template registration`, value: round(registerMs, 1), unit: 'ms' },
    { name: `${label}: task creation (median of ${CREATIONS})`, value: round(median(creations), 1), unit: 'ms' },
    { name: `${label}: task cancel (all steps)`, value: round(median(cancels), 1), unit: 'ms' },
    { name: `${label}: step_readiness, fresh task (p50)`, value: round(median(readinessFresh), 2), unit: 'ms' },
    { name: `${label}: step_readiness, complete task (p50)`, value: round(median(readinessDone), 2), unit: 'ms' },
    { name: `${label}: task_execution_context, fresh (p50)`, value: round(median(contextFresh), 2), unit: 'ms' },
    { name: `${label}: task_execution_context, complete (p50)`, value: round(median(contextDone), 2), unit: 'ms' },
    { name: `${label}: run, first enqueue -> task complete`, value: runMs, unit: 'ms' },
    { name: `${label}: run, steps/s`, value: runMs ? round(size / (runMs / 1000), 0) : null, unit: 'steps/s' },
    { name: `${label}: run, per layer (critical path)`, value: runMs ? round(runMs / layers, 1) : null, unit: 'ms' },
    { name: `${label}: run, server CPU`, value: round(cpuUse.server.percentOfCore, 1), unit: '% of a core' },
    { name: `${label}: run, PostgreSQL CPU`, value: round(cpuUse.postgres.percentOfCore, 1), unit: '% of a core' },
  ];
  const targets: TargetCheck[] = [];
  if (size === 10_000) targets.push(checkTarget('<= 500 ms creation of a 10,000-step task', round(median(creations), 1), 'ms', 500, 'max'));
  if (size === 1_000) targets.push(checkTarget('<= 10 ms step_readiness on 1,000 steps', round(median(readinessFresh), 2), 'ms', 10, 'max'));
  const details = {
    size,
    edges,
    layers,
    registerMs,
    creationsMs: creations,
    cancelsMs: cancels,
    stepReadiness: { fresh: summarize(readinessFresh), complete: summarize(readinessDone), explainFresh: readinessPlan },
    executionContext: { fresh: summarize(contextFresh), complete: summarize(contextDone), explainFresh: contextPlan },
    run: { window, runMs, harnessWallMs: wallMs, cpu: cpuUse, statements, wal },
  };
  return { figures, targets, details };
}

/** Runs the scenario. `size` = the largest DAG (default 10,000; 1,000 is always measured too). */
export async function dagScale(stack: Stack): Promise<ScenarioResult> {
  const { options } = stack.ctx;
  const largest = options.size ?? (options.smoke ? 200 : 10_000);
  const sizes = options.smoke && options.size === null ? [50, 200] : largest > 1_000 ? [1_000, largest] : [largest];
  const figures: Figure[] = [];
  const targets: TargetCheck[] = [];
  const details: Record<string, unknown> = {};
  for (const size of sizes) {
    const m = await measureSize(stack, size);
    figures.push(...m.figures);
    targets.push(...m.targets);
    details[`steps_${size}`] = m.details;
  }
  return {
    scenario: 'dag-scale',
    sizes: { dagSteps: sizes.join(' and '), nodeWorkers: options.workers ?? 2, concurrencyPerWorker: options.concurrency ?? 256 },
    figures,
    targets,
    notes: [
      'creation, cancel and the SQL functions are called engine-level from the harness process (TaskManager, direct SQL); times include the round trips and the commit',
      'step_readiness/task_execution_context timed as `select * from fn(task, now)` read in full, 10 runs each, warm cache',
    ],
    details,
  };
}
