/**
 * Checks a scenario's expectations against what was observed, as a list of readable
 * problems (empty = the client conforms). Pure: no I/O, so the same checks judge every
 * language and a failure names the step, the field, what was expected and what came.
 */
import type { StepView, TaskView, TransitionView, UpdateView } from './api.js';
import type { Scenario, StepExpectation, WorkerEventExpectation } from './scenario.js';
import type { WorkerEvent } from './worker-process.js';

/** Everything a scenario run observed. */
export interface ScenarioObservation {
  /** The task as GetTask returned it at the end. */
  readonly task: TaskView;
  /** Updates of the WatchTask opened right after CreateTask. */
  readonly live: readonly UpdateView[];
  /** Updates of a WatchTask opened after the task ended (empty unless progress is expected). */
  readonly replay: readonly UpdateView[];
  /** Audit trail (GetStepAudit) of every step named in `expect.transitions`. */
  readonly audits: ReadonlyMap<string, readonly TransitionView[]>;
  /** Worker stdout events printed since the scenario started. */
  readonly events: readonly WorkerEvent[];
  /** TASKER_CONCURRENCY the worker was started with. */
  readonly workerConcurrency: number;
  /** Problems met while running (timeouts, refused calls). */
  readonly runProblems: readonly string[];
}

const show = (v: unknown): string => {
  const text = JSON.stringify(v);
  return text === undefined ? String(v) : text.length > 300 ? `${text.slice(0, 300)}…` : text;
};

/**
 * Differences between `expected` and `actual` where objects are compared as subsets
 * (every expected key must be present and match; extra keys are fine) and arrays and
 * scalars exactly.
 */
export function subsetMismatches(expected: unknown, actual: unknown, path = ''): string[] {
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) return [`${path || '/'}: expected ${show(expected)}, got ${show(actual)}`];
    return expected.flatMap((e, i) => subsetMismatches(e, actual[i], `${path}/${i}`));
  }
  if (expected !== null && typeof expected === 'object') {
    if (actual === null || typeof actual !== 'object' || Array.isArray(actual)) return [`${path || '/'}: expected an object holding ${show(expected)}, got ${show(actual)}`];
    return Object.entries(expected).flatMap(([k, v]) =>
      k in actual ? subsetMismatches(v, (actual as Record<string, unknown>)[k], `${path}/${k}`) : [`${path}/${k}: missing (expected ${show(v)})`],
    );
  }
  return Object.is(expected, actual) ? [] : [`${path || '/'}: expected ${show(expected)}, got ${show(actual)}`];
}

function checkStep(step: StepView, e: StepExpectation): string[] {
  const out: string[] = [];
  if (e.state !== undefined && step.state !== e.state) out.push(`step ${step.name}: state ${step.state}, expected ${e.state}`);
  if (e.attempts !== undefined && step.attempts !== e.attempts) out.push(`step ${step.name}: ${step.attempts} attempt(s), expected ${e.attempts}`);
  if (e.result !== undefined) out.push(...subsetMismatches(e.result, step.result).map((m) => `step ${step.name} result ${m}`));
  return out;
}

function checkSteps(s: Scenario, task: TaskView): string[] {
  const out: string[] = [];
  const byName = new Map(task.steps.map((st) => [st.name, st]));
  if (s.expect.all_steps) for (const st of task.steps) out.push(...checkStep(st, s.expect.all_steps));
  for (const [name, e] of Object.entries(s.expect.steps)) {
    const st = byName.get(name);
    if (!st) out.push(`step ${name}: not in the task (steps: ${[...byName.keys()].join(', ')})`);
    else out.push(...checkStep(st, e));
  }
  return out;
}

function checkFailure(s: Scenario, task: TaskView): string[] {
  const f = s.expect.failure;
  if (!f) return [];
  const err = task.steps.find((st) => st.name === f.step)?.lastError;
  if (!err) return [`step ${f.step}: no failure recorded (last_error unset)`];
  const out: string[] = [];
  const field = (name: string, expected: unknown, actual: unknown): void => {
    if (expected !== undefined && expected !== actual) out.push(`step ${f.step} failure ${name}: ${show(actual)}, expected ${show(expected)}`);
  };
  field('error_class', f.errorClass, err.errorClass);
  field('message', f.message, err.message);
  field('code', f.code, err.code);
  field('retryable', f.retryable, err.retryable);
  field('retry_after_ms', f.retryAfterMs, err.retryAfterMs);
  if (f.backtraceNonEmpty && err.backtrace.filter((l) => l.trim() !== '').length === 0) out.push(`step ${f.step} failure backtrace: empty, expected at least one frame`);
  return out;
}

/** The progress payloads of `stepName` in an update list, with problems about their sequence numbers. */
function progressOf(updates: readonly UpdateView[], stepName: string): { payloads: unknown[]; problems: string[] } {
  const progress = updates.filter((u): u is Extract<UpdateView, { kind: 'progress' }> => u.kind === 'progress' && u.stepName === stepName);
  const problems: string[] = [];
  for (let i = 1; i < progress.length; i++) {
    const [prev, cur] = [progress[i - 1]!, progress[i]!];
    if (prev.attempt === cur.attempt && cur.seq <= prev.seq) problems.push(`progress seq not increasing: ${prev.seq} then ${cur.seq}`);
  }
  return { payloads: progress.map((p) => p.payload), problems };
}

function checkProgress(s: Scenario, o: ScenarioObservation): string[] {
  const p = s.expect.progress;
  if (!p) return [];
  const out: string[] = [];
  for (const [label, updates] of [['streamed (WatchTask during the run)', o.live], ['replayed (WatchTask after the end)', o.replay]] as const) {
    const seen = progressOf(updates, p.step);
    out.push(...seen.problems.map((m) => `${label}: step ${p.step} ${m}`));
    if (subsetMismatches(p.payloads, seen.payloads).length > 0) out.push(`${label}: step ${p.step} progress ${show(seen.payloads)}, expected ${show(p.payloads)}`);
  }
  return out;
}

/** Whether a worker event satisfies an expectation; `stepIds` maps step names of the task to ids. */
export function matchesWorkerEvent(e: WorkerEventExpectation, event: WorkerEvent, stepIds: ReadonlyMap<string, string>): boolean {
  if (event.event !== e.event) return false;
  if (e.step !== undefined && event.step_id !== stepIds.get(e.step)) return false;
  if (e.match && subsetMismatches(e.match, event).length > 0) return false;
  for (const [k, min] of Object.entries(e.at_least ?? {})) {
    const v = event[k];
    if (typeof v !== 'number' || v < min) return false;
  }
  return true;
}

function checkWorkerEvents(s: Scenario, o: ScenarioObservation): string[] {
  const ids = new Map(o.task.steps.map((st) => [st.name, st.stepId]));
  return s.expect.worker_events
    .filter((e) => !o.events.some((ev) => matchesWorkerEvent(e, ev, ids)))
    .map((e) => `worker stdout: no event ${show(e)}${e.step ? ` (step id ${ids.get(e.step)})` : ''}; saw ${show(o.events)}`);
}

function checkTransitions(s: Scenario, o: ScenarioObservation): string[] {
  const out: string[] = [];
  for (const [step, counts] of Object.entries(s.expect.transitions)) {
    const audit = o.audits.get(step) ?? [];
    for (const [state, n] of Object.entries(counts)) {
      const seen = audit.filter((t) => t.toState === state).length;
      if (seen !== n) out.push(`step ${step}: ${seen} transition(s) to ${state}, expected ${n}; audit ${show(audit.map((t) => `${t.fromState || '∅'}→${t.toState}@${t.attempt}`))}`);
    }
  }
  return out;
}

function checkCredit(s: Scenario, o: ScenarioObservation): string[] {
  const c = s.expect.credit;
  if (!c) return [];
  const out: string[] = [];
  if (o.workerConcurrency !== c.max_peak) out.push(`credit: the worker runs with TASKER_CONCURRENCY=${o.workerConcurrency}, the scenario needs ${c.max_peak}`);
  const steps = o.task.steps.filter((st) => st.handler.endsWith(`.${c.handler}`));
  if (steps.length <= c.max_peak) out.push(`credit: only ${steps.length} ${c.handler} step(s); the scenario needs more than ${c.max_peak}`);
  for (const st of steps) {
    const peak = (st.result as { peak?: unknown } | null)?.peak;
    if (typeof peak !== 'number' || peak < 1 || peak > c.max_peak) out.push(`credit: step ${st.name} peak ${show(peak)}, expected 1..${c.max_peak}`);
  }
  return out;
}

/** Every way the observation departs from the scenario; empty when the client conforms. */
export function checkScenario(s: Scenario, o: ScenarioObservation): string[] {
  return [
    ...o.runProblems,
    ...(o.task.state === s.expect.task ? [] : [`task: state ${o.task.state}, expected ${s.expect.task}`]),
    ...checkSteps(s, o.task),
    ...checkFailure(s, o.task),
    ...checkProgress(s, o),
    ...checkWorkerEvents(s, o),
    ...checkTransitions(s, o),
    ...checkCredit(s, o),
  ];
}

/** The task as a readable block: one line per step with state, attempts, result and last error. */
export function describeTask(task: TaskView): string {
  const lines = [`task ${task.taskId}: ${task.state}`];
  for (const st of task.steps) {
    const err = st.lastError ? ` last_error=${show({ ...st.lastError, backtrace: st.lastError.backtrace.slice(0, 3) })}` : '';
    lines.push(`  ${st.name} [${st.handler}] ${st.state} attempts=${st.attempts} result=${show(st.result)}${err}`);
  }
  return lines.join('\n');
}
