/**
 * `fan-out`: one task of one root, 5,000 parallel steps (default) and a join with
 * 5,001 ancestors. Creation engine-level; Node workers run it. Reports the parallel
 * phase's steps/s (root committed -> last parallel step committed), the join's hop
 * (last parallel step committed -> join enqueued, with its ancestor results) and
 * the whole run.
 */
import { sql } from 'kysely';
import { runWindow, waitForTasks } from '../lib/db-metrics.js';
import { registerTemplate } from '../lib/engine.js';
import type { ScenarioResult } from '../lib/report.js';
import type { Stack } from '../lib/stack.js';
import { round } from '../lib/stats.js';
import { fanOut as fanOutTemplate } from '../lib/templates.js';

interface StepTimes {
  readonly rootDone: Date | null;
  readonly lastParallelDone: Date | null;
  readonly joinEnqueued: Date | null;
  readonly joinDone: Date | null;
  readonly taskDone: Date | null;
}

async function stepTimes(stack: Stack, taskId: string): Promise<StepTimes> {
  const { rows } = await sql<{ root_done: Date | null; last_parallel: Date | null; join_enqueued: Date | null; join_done: Date | null; task_done: Date | null }>`
    select (select completed_at from workflow_steps where task_id = ${taskId}::uuid and name = 'start') as root_done,
           (select max(completed_at) from workflow_steps where task_id = ${taskId}::uuid and name like 'p%') as last_parallel,
           (select min(e.created_at) from tasker_events e where e.task_id = ${taskId}::uuid and e.step_name = 'join'
              and e.event_type = 'step.enqueued') as join_enqueued,
           (select completed_at from workflow_steps where task_id = ${taskId}::uuid and name = 'join') as join_done,
           (select completed_at from tasks where id = ${taskId}::uuid) as task_done`.execute(stack.engine.database.db);
  const r = rows[0];
  return {
    rootDone: r?.root_done ?? null,
    lastParallelDone: r?.last_parallel ?? null,
    joinEnqueued: r?.join_enqueued ?? null,
    joinDone: r?.join_done ?? null,
    taskDone: r?.task_done ?? null,
  };
}

const span = (a: Date | null, b: Date | null) => (a && b ? b.getTime() - a.getTime() : null);

/** Runs the scenario. `size` = parallel steps. */
export async function fanOut(stack: Stack): Promise<ScenarioResult> {
  const { options } = stack.ctx;
  const width = options.size ?? (options.smoke ? 100 : 5_000);
  const doc = fanOutTemplate(stack.namespace, width);
  const registerStarted = performance.now();
  await registerTemplate(stack.engine, doc);
  const registerMs = performance.now() - registerStarted;
  const createStarted = performance.now();
  const { task } = await stack.engine.tasks.createTask({ template: { namespace: stack.namespace, name: doc.name }, context: {} });
  const createMs = performance.now() - createStarted;
  await stack.resetDbStats();
  const cpu = stack.cpuWindow();
  const started = performance.now();
  const workers = await stack.startWorkers('node', options.workers ?? 2, { concurrency: options.concurrency ?? 256 });
  await waitForTasks(stack.engine.database.db, {
    namespace: stack.namespace,
    name: doc.name,
    expected: 1,
    timeoutMs: Math.max(120_000, width * 30),
    check: () => stack.server.assertRunning(),
  });
  const cpuUse = cpu.end(performance.now() - started);
  const { statements, wal } = await stack.dbStats();
  await stack.stopWorkers(workers);
  const window = await runWindow(stack.engine.database.db, stack.namespace, doc.name);
  const t = await stepTimes(stack, task.id);
  const parallelMs = span(t.rootDone, t.lastParallelDone);
  const runMs = span(window.firstEnqueuedAt, t.taskDone);
  const pct = (ms: number | null) => (ms === null || !runMs ? null : round((ms / runMs) * 100, 1));
  return {
    scenario: 'fan-out',
    sizes: { parallelSteps: width, totalSteps: width + 2, nodeWorkers: options.workers ?? 2, concurrencyPerWorker: options.concurrency ?? 256 },
    figures: [
      { name: 'template registration', value: round(registerMs, 1), unit: 'ms' },
      { name: 'task creation', value: round(createMs, 1), unit: 'ms' },
      { name: 'run: first enqueue -> task complete', value: runMs, unit: 'ms' },
      { name: 'parallel phase: root committed -> last parallel committed', value: parallelMs, unit: 'ms' },
      { name: 'parallel phase: steps/s', value: parallelMs ? round(width / (parallelMs / 1000), 0) : null, unit: 'steps/s' },
      { name: 'join: last parallel committed -> join enqueued', value: span(t.lastParallelDone, t.joinEnqueued), unit: 'ms' },
      { name: 'join: enqueued -> committed', value: span(t.joinEnqueued, t.joinDone), unit: 'ms' },
      { name: 'server CPU over the run', value: pct(cpuUse.server.cpuMs), unit: '% of a core' },
      { name: 'PostgreSQL CPU over the run', value: pct(cpuUse.postgres.cpuMs), unit: '% of a core' },
    ],
    targets: [],
    notes: [
      'the join is claimed with the results of all its ancestors (the claim walks them once and the server assembles the JSON); its enqueue time includes that',
      'CPU % is CPU ms over the DB-measured run (first enqueue -> task complete); the CPU window itself also spans the workers starting',
    ],
    details: { window, stepTimes: t, cpu: cpuUse, statements, wal, createMs, registerMs },
  };
}
