/**
 * The rules a task template must satisfy before it is stored or used. Each problem is
 * one Violation whose path is in document form (`/steps/2/retry/base_ms`) and whose
 * message names the offending step, so a reader can fix every problem in one pass.
 *
 * Checked: name, namespace, version and identity strategy; at least one step; step
 * names (format, duplicates), handlers, handler_config (a JSON object); dependencies
 * (unknown, self, duplicate, cycles, printed as `cycle: a -> b -> c -> a`); retry
 * values (1 <= max_attempts <= 100, 0 <= base_ms <= max_ms, jitter in [0, 1], integer
 * milliseconds up to MAX_MS); timeout_ms (null or a positive integer); the context
 * schema (must compile with ajv); environment overrides (known steps, and the same
 * value rules for what they change).
 */
import { canonicalJson, pointer } from './canonical-json.js';
import { contextSchemaViolations } from './context-schema.js';
import { findCycles } from './dag.js';
import { ValidationError, type Violation } from './errors.js';
import {
  BACKOFF_KINDS,
  HANDLER_PATTERN,
  IDENTITY_STRATEGIES,
  MAX_ATTEMPTS_LIMIT,
  MAX_MS,
  NAME_PATTERN,
  TEMPLATE_INVALID,
  VERSION_PATTERN,
  templateKey,
  type RetryPolicy,
  type StepOverride,
  type StepTemplate,
  type TaskTemplate,
} from './template.js';

/** Every rule the template breaks; empty when it is valid. */
export function validateTemplate(t: TaskTemplate): Violation[] {
  return [
    ...headerViolations(t),
    ...stepsViolations(t.steps),
    ...contextSchemaRules(t.contextSchema),
    ...environmentViolations(t),
  ];
}

/** Throws ValidationError `TEMPLATE_INVALID` listing every violation when the template is invalid. */
export function assertValidTemplate(t: TaskTemplate): void {
  const violations = validateTemplate(t);
  if (violations.length > 0) throw templateInvalid(templateKey(t), violations);
}

/** The ValidationError for an invalid template: the first problem in the message, all of them in `violations`. */
export function templateInvalid(key: string, violations: readonly Violation[]): ValidationError {
  const first = violations[0];
  const more = violations.length > 1 ? ` (and ${violations.length - 1} more)` : '';
  const detail = first === undefined ? '' : `: ${first.path === '' ? '' : `${first.path}: `}${first.message}${more}`;
  return new ValidationError(`template ${key} is invalid${detail}`, violations, TEMPLATE_INVALID);
}

function headerViolations(t: TaskTemplate): Violation[] {
  const out: Violation[] = [];
  const nameRule = `must match ${NAME_PATTERN.source} (lower-case letters, digits, '_', '.', '-'; starting with a letter)`;
  if (!NAME_PATTERN.test(t.namespace)) {
    out.push({ path: '/namespace', message: `namespace ${JSON.stringify(t.namespace)} ${nameRule}` });
  }
  if (!NAME_PATTERN.test(t.name)) out.push({ path: '/name', message: `name ${JSON.stringify(t.name)} ${nameRule}` });
  if (!VERSION_PATTERN.test(t.version)) {
    out.push({
      path: '/version',
      message: `version ${JSON.stringify(t.version)} must be 1-64 letters, digits, '.', '_', '+' or '-' (e.g. 1.0.0)`,
    });
  }
  if (!IDENTITY_STRATEGIES.includes(t.identityStrategy)) {
    out.push({ path: '/identity_strategy', message: `identity_strategy must be one of ${IDENTITY_STRATEGIES.join(', ')}` });
  }
  return out;
}

function stepsViolations(steps: readonly StepTemplate[]): Violation[] {
  if (steps.length === 0) return [{ path: '/steps', message: 'template has no steps; at least one is required' }];
  const out: Violation[] = [];
  const firstIndex = new Map<string, number>();
  steps.forEach((s, i) => {
    if (!firstIndex.has(s.name)) firstIndex.set(s.name, i);
  });
  steps.forEach((s, i) => {
    const at = `/steps/${i}`;
    if (!NAME_PATTERN.test(s.name)) {
      out.push({ path: `${at}/name`, message: `step name ${JSON.stringify(s.name)} must match ${NAME_PATTERN.source}` });
    } else if (firstIndex.get(s.name) !== i) {
      const first = firstIndex.get(s.name);
      out.push({ path: `${at}/name`, message: `duplicate step name '${s.name}' (first declared at /steps/${first})` });
    }
    out.push(...stepValueViolations(s, at, s));
    out.push(...dependencyViolations(s, at, firstIndex));
  });
  const withoutSelfLoops = steps.map((s) => ({ name: s.name, dependsOn: s.dependsOn.filter((d) => d !== s.name) }));
  for (const cycle of findCycles(withoutSelfLoops)) {
    out.push({ path: `/steps/${firstIndex.get(cycle[0]!)}/depends_on`, message: `cycle: ${cycle.join(' -> ')}` });
  }
  return out;
}

function dependencyViolations(s: StepTemplate, at: string, known: ReadonlyMap<string, number>): Violation[] {
  const out: Violation[] = [];
  const seen = new Set<string>();
  s.dependsOn.forEach((d, j) => {
    const path = `${at}/depends_on/${j}`;
    if (d === s.name) out.push({ path, message: `step '${s.name}' depends on itself` });
    else if (seen.has(d)) out.push({ path, message: `step '${s.name}' lists dependency '${d}' more than once` });
    else if (!known.has(d)) out.push({ path, message: `step '${s.name}' depends on unknown step '${d}'` });
    seen.add(d);
  });
  return out;
}

/** Which parts of a step to check: a whole step, or only what an override changes. */
type StepParts = Pick<StepOverride, 'handler' | 'handlerConfig' | 'retry' | 'timeoutMs'>;

/** Handler, handler_config, retry and timeout of `s`, restricted to the parts present in `parts`. */
function stepValueViolations(s: StepTemplate, at: string, parts: StepParts): Violation[] {
  const out: Violation[] = [];
  const who = `step '${s.name}'`;
  if (parts.handler !== undefined && !HANDLER_PATTERN.test(s.handler)) {
    out.push({ path: `${at}/handler`, message: `${who}: handler must be 1-255 printable characters without spaces` });
  }
  if (parts.handlerConfig !== undefined) {
    out.push(...jsonObjectViolations(s.handlerConfig, `${at}/handler_config`, `${who}: handler_config`));
  }
  if (parts.retry !== undefined) {
    const changed = new Set(Object.keys(parts.retry) as (keyof RetryPolicy)[]);
    for (const v of retryViolations(s.retry, `${at}/retry`, who)) {
      if (changed.has(v.field) || (v.field === 'maxMs' && changed.has('baseMs'))) out.push({ path: v.path, message: v.message });
    }
  }
  if (parts.timeoutMs !== undefined && s.timeoutMs !== null && !isMs(s.timeoutMs, 1)) {
    out.push({ path: `${at}/timeout_ms`, message: `${who}: timeout_ms must be null or an integer from 1 to ${MAX_MS}` });
  }
  return out;
}

const RETRY_FIELD_PATHS: Readonly<Record<keyof RetryPolicy, string>> = {
  maxAttempts: 'max_attempts',
  backoff: 'backoff',
  baseMs: 'base_ms',
  maxMs: 'max_ms',
  jitter: 'jitter',
};

function retryViolations(r: RetryPolicy, at: string, who: string): (Violation & { field: keyof RetryPolicy })[] {
  const out: (Violation & { field: keyof RetryPolicy })[] = [];
  const add = (field: keyof RetryPolicy, message: string): void => {
    const key = RETRY_FIELD_PATHS[field];
    out.push({ field, path: `${at}/${key}`, message: `${who}: retry.${key} ${message}` });
  };
  if (!Number.isInteger(r.maxAttempts) || r.maxAttempts < 1 || r.maxAttempts > MAX_ATTEMPTS_LIMIT) {
    add('maxAttempts', `must be an integer from 1 to ${MAX_ATTEMPTS_LIMIT} (got ${r.maxAttempts})`);
  }
  if (!BACKOFF_KINDS.includes(r.backoff)) {
    add('backoff', `must be one of ${BACKOFF_KINDS.join(', ')} (got ${JSON.stringify(r.backoff)})`);
  }
  const baseOk = isMs(r.baseMs, 0);
  if (!baseOk) add('baseMs', `must be an integer from 0 to ${MAX_MS} (got ${r.baseMs})`);
  if (!isMs(r.maxMs, 0)) add('maxMs', `must be an integer from 0 to ${MAX_MS} (got ${r.maxMs})`);
  else if (baseOk && r.maxMs < r.baseMs) add('maxMs', `must be at least retry.base_ms (${r.baseMs}), got ${r.maxMs}`);
  if (typeof r.jitter !== 'number' || !(r.jitter >= 0 && r.jitter <= 1)) {
    add('jitter', `must be a number from 0 to 1 (got ${r.jitter})`);
  }
  return out;
}

function isMs(value: number, min: number): boolean {
  return Number.isInteger(value) && value >= min && value <= MAX_MS;
}

function jsonObjectViolations(value: unknown, path: string, what: string): Violation[] {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return [{ path, message: `${what} must be a JSON object` }];
  }
  try {
    canonicalJson(value);
    return [];
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    return err.violations.map((v) => ({ path: path + v.path, message: `${what}: ${v.message}` }));
  }
}

function contextSchemaRules(schema: TaskTemplate['contextSchema']): Violation[] {
  if (schema === null) return [];
  const notJson = jsonObjectViolations(schema, '/context_schema', 'context_schema');
  return notJson.length > 0 ? notJson : contextSchemaViolations(schema);
}

function environmentViolations(t: TaskTemplate): Violation[] {
  const out: Violation[] = [];
  const steps = new Map(t.steps.map((s) => [s.name, s] as const));
  for (const [env, override] of Object.entries(t.environments)) {
    const envPath = pointer('/environments', env);
    if (!NAME_PATTERN.test(env)) {
      out.push({ path: envPath, message: `environment name ${JSON.stringify(env)} must match ${NAME_PATTERN.source}` });
    }
    for (const [stepName, o] of Object.entries(override.steps)) {
      const at = pointer(`${envPath}/steps`, stepName);
      const step = steps.get(stepName);
      if (step === undefined) {
        out.push({ path: at, message: `environment '${env}' overrides unknown step '${stepName}'` });
        continue;
      }
      out.push(...stepValueViolations(overrideStep(step, o), at, o));
    }
  }
  return out;
}

/**
 * `step` with `o` applied: handler and timeout replaced, handler_config merged by
 * top-level key, retry merged field by field. Used by validation and by
 * `applyEnvironment`.
 */
export function overrideStep(step: StepTemplate, o: StepOverride): StepTemplate {
  return {
    ...step,
    handler: o.handler ?? step.handler,
    handlerConfig: o.handlerConfig === undefined ? step.handlerConfig : { ...step.handlerConfig, ...o.handlerConfig },
    retry: o.retry === undefined ? step.retry : { ...step.retry, ...definedFields(o.retry) },
    timeoutMs: o.timeoutMs === undefined ? step.timeoutMs : o.timeoutMs,
  };
}

function definedFields<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
