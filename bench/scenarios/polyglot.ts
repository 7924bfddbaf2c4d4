/**
 * `polyglot`: the throughput drain with one worker process of each SDK in turn —
 * Node, Ruby, Python — each on its own backlog (default 2,000 single-step tasks and
 * 200 ten-step DAG tasks per language). Shows what each SDK sustains and what it
 * costs in worker CPU.
 */
import { registerTemplate } from '../lib/engine.js';
import type { Figure, ScenarioResult } from '../lib/report.js';
import type { Stack } from '../lib/stack.js';
import { round } from '../lib/stats.js';
import { dag10, singleStep } from '../lib/templates.js';
import type { WorkerLanguage } from '../lib/worker-process.js';
import type { DrainResult } from './drain.js';
import { drainPhase } from './drain.js';

const LANGUAGES: readonly WorkerLanguage[] = ['node', 'ruby', 'python'];

function figures(language: WorkerLanguage, single: DrainResult, dag: DrainResult): Figure[] {
  return [
    { name: `${language}: single-step steps/s`, value: round(single.window.stepsPerSecond, 0), unit: 'steps/s' },
    { name: `${language}: 10-step DAG steps/s`, value: round(dag.window.stepsPerSecond, 0), unit: 'steps/s' },
    { name: `${language}: worker CPU (single-step)`, value: single.cpuPercentOfWindow.workers, unit: '% of a core' },
    { name: `${language}: worker CPU per 1k steps (single-step)`, value: single.cpuMsPer1kSteps.workers, unit: 'ms' },
    { name: `${language}: server CPU (single-step)`, value: single.cpuPercentOfWindow.server, unit: '% of a core' },
    { name: `${language}: PostgreSQL CPU (single-step)`, value: single.cpuPercentOfWindow.postgres, unit: '% of a core' },
  ];
}

/** Runs the scenario. `size` = single-step tasks per language (DAG tasks = size / 10). */
export async function polyglot(stack: Stack): Promise<ScenarioResult> {
  const { options } = stack.ctx;
  const singles = options.size ?? (options.smoke ? 50 : 2_000);
  const dags = Math.max(1, Math.round(singles / 10));
  const out: Figure[] = [];
  const details: Record<string, unknown> = {};
  const concurrency: Record<WorkerLanguage, number> = { node: 256, ruby: 64, python: 64 };
  for (const language of LANGUAGES) {
    const namespace = `${stack.namespace}_${language}`;
    await registerTemplate(stack.engine, singleStep(namespace));
    await registerTemplate(stack.engine, dag10(namespace));
    const common = { namespace, language, workers: 1, concurrency: options.concurrency ?? concurrency[language], timeoutMs: Math.max(180_000, singles * 100) };
    const single = await drainPhase(stack, { ...common, template: 'single', tasks: singles, stepsPerTask: 1 });
    const dag = await drainPhase(stack, { ...common, template: 'dag10', tasks: dags, stepsPerTask: 10 });
    out.push(...figures(language, single, dag));
    details[language] = { single, dag };
  }
  return {
    scenario: 'polyglot',
    sizes: {
      singleStepTasksPerLanguage: singles,
      dag10TasksPerLanguage: dags,
      workerProcesses: 1,
      concurrency: options.concurrency ? String(options.concurrency) : 'node 256, ruby 64, python 64',
    },
    figures: out,
    targets: [],
    notes: ['one worker process per language, in turn, each draining its own backlog created engine-level beforehand'],
    details,
  };
}
