/**
 * Runs one conformance scenario for one language against a real server: registers
 * the scenario's template bound to the language, creates the task, watches it (and
 * takes the scenario's actions when their triggers show up on the watch), waits for
 * the end, then gathers what the checks need: the final task, the replay of a second
 * WatchTask, step audits and the worker's stdout events.
 */
import type { TemplateDefaults } from '../../../src/domain/template-document.js';
import type { ConformanceApi, UpdateView, TaskView, TransitionView } from './api.js';
import type { ScenarioObservation } from './checks.js';
import { matchesWorkerEvent, subsetMismatches } from './checks.js';
import type { Scenario, Trigger } from './scenario.js';
import { conformanceTemplateProto } from './templates.js';
import type { WorkerProcess } from './worker-process.js';

/** What running a scenario needs. */
export interface ScenarioRunContext {
  readonly api: ConformanceApi;
  readonly worker: WorkerProcess;
  /** The worker's handler prefix (`conformance.<language>`). */
  readonly prefix: string;
  /** TASKER_CONCURRENCY the worker was started with. */
  readonly workerConcurrency: number;
  /** `clients/conformance/templates`. */
  readonly templatesDir: string;
  /** Retry defaults filled into template fields the files leave out. */
  readonly defaults: TemplateDefaults;
  /** How long to wait for a replay or an expected worker event after the end (ms). */
  readonly settleMs?: number;
}

/** What a run returns: the task's id and what was observed. */
export interface ScenarioRunResult {
  readonly taskId: string;
  readonly observation: ScenarioObservation;
}

function triggered(t: Trigger, u: UpdateView): boolean {
  if (t.event === 'progress') {
    if (u.kind !== 'progress' || (t.step !== undefined && u.stepName !== t.step)) return false;
    return t.match === undefined || subsetMismatches(t.match, u.payload).length === 0;
  }
  return u.kind === 'step_state' && (t.step === undefined || u.stepName === t.step) && (t.state === undefined || u.toState === t.state);
}

const sleep = (ms: number) => new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms));

/** Watches the task to its end, taking the scenario's actions; returns the live updates. */
async function watchToEnd(ctx: ScenarioRunContext, s: Scenario, taskId: string, problems: string[]): Promise<UpdateView[]> {
  const pending = s.actions.map((a) => ({ action: a, done: false }));
  const acting: Promise<unknown>[] = [];
  const watch = ctx.api.watchTask(taskId, (u) => {
    for (const p of pending) {
      if (p.done || !triggered(p.action.cancel_when, u)) continue;
      p.done = true;
      acting.push(ctx.api.cancelTask(taskId, p.action.reason).catch((err: Error) => problems.push(`CancelTask failed: ${err.message}`)));
    }
  });
  const ended = await Promise.race([watch.ended, sleep(s.timeout_ms)]);
  if (ended === 'timeout') {
    watch.cancel();
    problems.push(`the task did not reach a terminal state within ${s.timeout_ms} ms (WatchTask still open)`);
  } else if (ended) {
    problems.push(`WatchTask ended with an error: ${ended.message}`);
  }
  await Promise.all(acting);
  for (const p of pending) if (!p.done) problems.push(`action never triggered: cancel_when ${JSON.stringify(p.action.cancel_when)}`);
  return watch.updates;
}

/** A WatchTask opened after the end: the replay of the whole history. */
async function replay(ctx: ScenarioRunContext, taskId: string, problems: string[]): Promise<UpdateView[]> {
  const watch = ctx.api.watchTask(taskId);
  const ended = await Promise.race([watch.ended, sleep(ctx.settleMs ?? 20_000)]);
  if (ended === 'timeout') {
    watch.cancel();
    problems.push('the replaying WatchTask (opened after the end) did not end');
  } else if (ended) {
    problems.push(`the replaying WatchTask ended with an error: ${ended.message}`);
  }
  return watch.updates;
}

/** Waits until every expected worker event has been printed (or the settle time passed). */
async function awaitWorkerEvents(ctx: ScenarioRunContext, s: Scenario, task: TaskView, from: number): Promise<void> {
  const ids = new Map(task.steps.map((st) => [st.name, st.stepId]));
  for (const e of s.expect.worker_events) {
    await ctx.worker
      .waitForEvent((ev) => matchesWorkerEvent(e, ev, ids), { from, timeoutMs: ctx.settleMs ?? 20_000, what: `worker event ${JSON.stringify(e)}` })
      .catch(() => undefined); // the check reports what is missing, with what was seen
  }
}

/** Runs the scenario and returns what was observed (never throws for a non-conforming client). */
export async function runScenario(ctx: ScenarioRunContext, s: Scenario): Promise<ScenarioRunResult> {
  const problems: string[] = [];
  const namespace = `conformance_${s.language}`;
  const template = conformanceTemplateProto(ctx.templatesDir, s.template, { prefix: ctx.prefix, language: s.language }, ctx.defaults);
  if (template.namespace !== namespace) throw new Error(`conformance template ${s.template} must use namespace conformance_\${language}`);
  await ctx.api.registerTemplate(template);

  const eventsFrom = ctx.worker.events.length;
  const created = await ctx.api.createTask(namespace, template.name, s.context);
  const live = await watchToEnd(ctx, s, created.taskId, problems);
  const task = await ctx.api.getTask(created.taskId);
  const replayed = s.expect.progress ? await replay(ctx, created.taskId, problems) : [];
  const audits = new Map<string, TransitionView[]>();
  for (const name of Object.keys(s.expect.transitions)) {
    const step = task.steps.find((st) => st.name === name);
    if (step) audits.set(name, await ctx.api.stepAudit(step.stepId));
  }
  await awaitWorkerEvents(ctx, s, task, eventsFrom);
  return {
    taskId: created.taskId,
    observation: {
      task,
      live,
      replay: replayed,
      audits,
      events: ctx.worker.events.slice(eventsFrom),
      workerConcurrency: ctx.workerConcurrency,
      runProblems: problems,
    },
  };
}
