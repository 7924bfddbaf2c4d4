/**
 * The polyglot example's task: which template it runs, with which context, which
 * language must run each step, and how the finished task is shown.
 */
import type { Task, TaskerClient } from '../../clients/node/src/index.js';
import type { PolyglotLanguage } from './processes.js';

/** The template, from config/templates/polyglot/polyglot_pipeline.yaml. */
export const POLYGLOT_TEMPLATE = { namespace: 'polyglot', name: 'polyglot_pipeline' } as const;

/** The task context the example runs with. */
export const POLYGLOT_CONTEXT = { readings: [12, 7, 3, 19, 8], threshold: 10 } as const;

/** The language that serves each step, in template order. */
export const STEP_LANGUAGES: Readonly<Record<string, PolyglotLanguage>> = {
  extract: 'python',
  transform: 'ruby',
  score: 'node',
  report: 'python',
};

/** Creates the example task and waits until it ends. */
export async function runPolyglotTask(client: TaskerClient, timeoutMs = 60_000): Promise<Task> {
  const { task } = await client.createTask({ ...POLYGLOT_TEMPLATE, context: { ...POLYGLOT_CONTEXT }, initiator: 'polyglot example' });
  return client.waitForTask(task.taskId, { timeoutMs });
}

/** The language a step's result says it ran in (undefined without one). */
export function languageOf(result: unknown): unknown {
  return result !== null && typeof result === 'object' ? (result as { language?: unknown }).language : undefined;
}

/** Steps whose result does not name the language that should have run them. */
export function wrongLanguages(task: Task): string[] {
  return task.steps
    .filter((s) => languageOf(s.result) !== STEP_LANGUAGES[s.name])
    .map((s) => `${s.name}: ran in ${String(languageOf(s.result))}, expected ${STEP_LANGUAGES[s.name]}`);
}

/** The finished task as text: one line per step with its state, language and result. */
export function formatTask(task: Task): string {
  const width = Math.max(...task.steps.map((s) => s.name.length));
  const lines = [`task ${task.taskId}: ${task.state}`];
  for (const s of task.steps) {
    const { language, ...rest } = (s.result ?? {}) as Record<string, unknown>;
    const error = s.lastError ? `  error: ${s.lastError.errorClass}: ${s.lastError.message}` : '';
    lines.push(`  ${s.name.padEnd(width)}  ${s.state.padEnd(8)}  ${String(language ?? '-').padEnd(6)}  ${JSON.stringify(rest)}${error}`);
  }
  return lines.join('\n');
}
