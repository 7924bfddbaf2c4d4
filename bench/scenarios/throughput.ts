/**
 * `throughput`: a backlog of single-step no-op tasks (default 20,000), then one of
 * ten-step DAG tasks (default 2,000, i.e. 20,000 steps), each drained by Node worker
 * processes (default 2, concurrency 256 each). Steps/s from the database timestamps,
 * CPU of server, PostgreSQL and workers per phase.
 */
import { registerTemplate } from '../lib/engine.js';
import type { Figure, ScenarioResult } from '../lib/report.js';
import { checkTarget } from '../lib/report.js';
import type { Stack } from '../lib/stack.js';
import { round } from '../lib/stats.js';
import { dag10, singleStep } from '../lib/templates.js';
import type { DrainResult } from './drain.js';
import { drainPhase } from './drain.js';

/** Figures of one drain phase, labelled. */
export function drainFigures(label: string, r: DrainResult): Figure[] {
  return [
    { name: `${label}: steps/s`, value: round(r.window.stepsPerSecond, 0), unit: 'steps/s' },
    { name: `${label}: steps completed`, value: r.window.completed },
    { name: `${label}: first enqueue -> last complete`, value: r.window.windowMs, unit: 'ms' },
    { name: `${label}: task creation`, value: r.createdPerSecond, unit: 'tasks/s' },
    { name: `${label}: server CPU`, value: r.cpuPercentOfWindow.server, unit: '% of a core' },
    { name: `${label}: PostgreSQL CPU`, value: r.cpuPercentOfWindow.postgres, unit: '% of a core' },
    { name: `${label}: workers CPU`, value: r.cpuPercentOfWindow.workers, unit: '% of a core' },
    { name: `${label}: server CPU per 1k steps`, value: r.cpuMsPer1kSteps.server, unit: 'ms' },
    { name: `${label}: PostgreSQL CPU per 1k steps`, value: r.cpuMsPer1kSteps.postgres, unit: 'ms' },
    { name: `${label}: WAL flushes per 1k steps`, value: r.wal && r.window.completed ? round((r.wal.syncs / r.window.completed) * 1000, 1) : null },
  ];
}

/** Runs the scenario. `size` = single-step tasks; DAG tasks = size / 10. */
export async function throughput(stack: Stack): Promise<ScenarioResult> {
  const { options } = stack.ctx;
  const singles = options.size ?? (options.smoke ? 200 : 20_000);
  const dags = Math.max(1, Math.round(singles / 10));
  const workers = options.workers ?? 2;
  const concurrency = options.concurrency ?? 256;
  await registerTemplate(stack.engine, singleStep(stack.namespace));
  await registerTemplate(stack.engine, dag10(stack.namespace));
  const timeoutMs = Math.max(120_000, singles * 20);
  const single = await drainPhase(stack, { template: 'single', tasks: singles, stepsPerTask: 1, language: 'node', workers, concurrency, timeoutMs });
  const dag = await drainPhase(stack, { template: 'dag10', tasks: dags, stepsPerTask: 10, language: 'node', workers, concurrency, timeoutMs });
  return {
    scenario: 'throughput',
    sizes: { singleStepTasks: singles, dag10Tasks: dags, nodeWorkers: workers, concurrencyPerWorker: concurrency },
    figures: [...drainFigures('single-step', single), ...drainFigures('10-step DAG', dag)],
    targets: [
      checkTarget('>= 10,000 steps/s (single-step)', round(single.window.stepsPerSecond, 0), 'steps/s', 10_000, 'min'),
      checkTarget('>= 10,000 steps/s (10-step DAG)', round(dag.window.stepsPerSecond, 0), 'steps/s', 10_000, 'min'),
    ],
    notes: [
      'tasks created engine-level (TaskManager.createTask from the harness, 16 in flight, one transaction each) before the workers connect; the backlog is then drained',
      'steps/s = step.completed events / (last step.completed - first step.enqueued), timestamps from the server clock',
    ],
    details: { single, dag },
  };
}
