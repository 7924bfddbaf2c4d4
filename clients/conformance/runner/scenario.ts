/**
 * The conformance scenario model: what a `clients/conformance/scenarios/*.yaml` file
 * says, validated with one zod schema, and its resolution for one language.
 *
 * A scenario names a template (a file in `clients/conformance/templates/`), the task
 * context, optional actions the runner takes while the task runs, and the outcome a
 * user must see, identical for every client. The only language-specific values are
 * those the contract itself makes language-specific (an exception's class): they are
 * written as `{node: ..., ruby: ..., python: ...}`. The string `${language}` anywhere
 * in an expectation stands for the language under test.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';

/** The client languages the suite runs, in the order it reports them. */
export const LANGUAGES = ['node', 'ruby', 'python'] as const;
/** One client language. */
export type Language = (typeof LANGUAGES)[number];

/** Lowercase task states, as the proto's `TASK_STATE_*` names without the prefix. */
export const TASK_STATES = ['pending', 'in_progress', 'waiting_for_retry', 'blocked_by_failures', 'complete', 'error', 'cancelled', 'resolved_manually'] as const;
/** Lowercase step states, as the proto's `STEP_STATE_*` names without the prefix. */
export const STEP_STATES = ['pending', 'enqueued', 'in_progress', 'waiting_for_retry', 'complete', 'error', 'cancelled', 'resolved_manually'] as const;

const jsonObject = z.record(z.string(), z.unknown());
const perLanguage = <T extends z.ZodType>(value: T) =>
  z.union([value, z.strictObject({ node: value, ruby: value, python: value })]);

const stepExpectationSchema = z.strictObject({
  /** Final state of the step. */
  state: z.enum(STEP_STATES).optional(),
  /** Attempts dispatched (Step.attempts). */
  attempts: z.number().int().min(0).optional(),
  /** Keys the step's result must hold with these values (deep subset). */
  result: z.unknown().optional(),
});

const failureSchema = z.strictObject({
  /** The step whose last_error is checked. */
  step: z.string(),
  error_class: perLanguage(z.string()).optional(),
  message: z.string().optional(),
  code: z.string().optional(),
  retryable: z.boolean().optional(),
  /** The retry delay the worker asked for; `null` = none. */
  retry_after_ms: z.number().int().min(0).nullable().optional(),
  /** `true`: at least one frame. */
  backtrace_non_empty: z.boolean().optional(),
});

const triggerSchema = z.strictObject({
  /** `progress`: a step_progress update whose payload holds `match`; `state`: a step reaching `state`. */
  event: z.enum(['progress', 'state']),
  step: z.string().optional(),
  match: jsonObject.optional(),
  state: z.enum(STEP_STATES).optional(),
});

const actionSchema = z.strictObject({
  /** Cancel the task (TaskService.CancelTask) once the trigger is seen on WatchTask. */
  cancel_when: triggerSchema,
  reason: z.string().default('conformance: cancel requested by the scenario'),
});

const workerEventSchema = z.strictObject({
  /** The `event` value of a worker stdout line. */
  event: z.string(),
  /** The line's `step_id` must be the id of this step. */
  step: z.string().optional(),
  /** Fields the line must hold with these values. */
  match: jsonObject.optional(),
  /** Numeric fields that must be at least these values. */
  at_least: z.record(z.string(), z.number()).optional(),
});

const expectationSchema = z.strictObject({
  /** Final task state. */
  task: z.enum(TASK_STATES),
  /** Applied to every step of the task. */
  all_steps: stepExpectationSchema.optional(),
  /** Per step name. */
  steps: z.record(z.string(), stepExpectationSchema).default({}),
  failure: failureSchema.optional(),
  /** Progress payloads of one step, in order: seen live on WatchTask and replayed by a WatchTask opened after the end. */
  progress: z.strictObject({ step: z.string(), payloads: z.array(z.unknown()) }).optional(),
  /** Lines the worker must print on stdout while the scenario runs. */
  worker_events: z.array(workerEventSchema).default([]),
  /** Per step name: how many audited transitions (GetStepAudit) must end in each state. */
  transitions: z.record(z.string(), z.record(z.string(), z.number().int().min(0))).default({}),
  /**
   * Credit: the `peak` result of every step running `handler` must be at most
   * `max_peak`, the worker must have been started with TASKER_CONCURRENCY =
   * `max_peak`, and the task must hold more such steps than that.
   */
  credit: z.strictObject({ handler: z.string(), max_peak: z.number().int().min(1) }).optional(),
});

const scenarioSchema = z.strictObject({
  name: z.string().regex(/^[a-z][a-z0-9-]*$/),
  description: z.string().min(1),
  template: z.string().regex(/^[a-z0-9_]+\.yaml$/),
  context: jsonObject.default({}),
  actions: z.array(actionSchema).default([]),
  /** Longest the task may take to reach its final state (ms). */
  timeout_ms: z.number().int().positive().default(60_000),
  expect: expectationSchema,
});

/** A scenario as written in its file. */
export type ScenarioDocument = z.output<typeof scenarioSchema>;
/** What one step must look like at the end. */
export type StepExpectation = z.output<typeof stepExpectationSchema>;
/** A trigger of an action. */
export type Trigger = z.output<typeof triggerSchema>;
/** An action the runner takes while the task runs. */
export type ScenarioAction = z.output<typeof actionSchema>;
/** A worker stdout line the scenario expects. */
export type WorkerEventExpectation = z.output<typeof workerEventSchema>;

/** The failure expectation with the error class resolved for one language. */
export interface FailureExpectation {
  readonly step: string;
  readonly errorClass?: string;
  readonly message?: string;
  readonly code?: string;
  readonly retryable?: boolean;
  readonly retryAfterMs?: number | null;
  readonly backtraceNonEmpty?: boolean;
}

/** A scenario resolved for one language: per-language values picked, `${language}` substituted. */
export interface Scenario extends Omit<ScenarioDocument, 'expect'> {
  readonly language: Language;
  readonly expect: Omit<ScenarioDocument['expect'], 'failure'> & { readonly failure?: FailureExpectation };
}

/** Replaces `${language}` in every string of a JSON-like value. */
function substituteLanguage(value: unknown, language: Language): unknown {
  if (typeof value === 'string') return value.replaceAll('${language}', language);
  if (Array.isArray(value)) return value.map((v) => substituteLanguage(v, language));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteLanguage(v, language)]));
  }
  return value;
}

function pick<T>(value: T | { node: T; ruby: T; python: T } | undefined, language: Language): T | undefined {
  if (value !== null && typeof value === 'object' && 'node' in value && 'ruby' in value && 'python' in value) return value[language];
  return value as T | undefined;
}

/** Parses and validates one scenario document; errors name the file and the key path. */
export function parseScenario(source: string, file: string): ScenarioDocument {
  const parsed = scenarioSchema.safeParse(parse(source));
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  /${i.path.join('/')}: ${i.message}`).join('\n');
    throw new Error(`invalid conformance scenario ${file}:\n${problems}`);
  }
  if (`${parsed.data.name}.yaml` !== file.replace(/^.*\//, '')) {
    throw new Error(`conformance scenario ${file} must be named after its scenario (${parsed.data.name}.yaml)`);
  }
  return parsed.data;
}

/** Every scenario of `dir` (`*.yaml`), sorted by name. */
export function loadScenarios(dir: string): ScenarioDocument[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => parseScenario(readFileSync(join(dir, f), 'utf8'), f));
}

/** The scenario as one language must satisfy it. */
export function resolveScenario(doc: ScenarioDocument, language: Language): Scenario {
  const expect = substituteLanguage(doc.expect, language) as ScenarioDocument['expect'];
  const failure = expect.failure && {
    step: expect.failure.step,
    errorClass: pick(expect.failure.error_class, language),
    message: expect.failure.message,
    code: expect.failure.code,
    retryable: expect.failure.retryable,
    retryAfterMs: expect.failure.retry_after_ms,
    backtraceNonEmpty: expect.failure.backtrace_non_empty,
  };
  return { ...doc, language, expect: { ...expect, failure } };
}
