/**
 * The document form of a task template: the snake_case shape of the YAML files under
 * `config/templates/`, of the `task_templates.body` column and of the wire.
 *
 * Parsing is strict: unknown keys are errors, and the result has passed every rule
 * of `template-validation.ts`, so a parsed template is always a valid one. Absent and
 * `null` mean the same thing for optional keys, except an environment override's
 * `timeout_ms: null`, which resets the step's timeout to the server default.
 *
 * Defaults filled in: `description` "", `context_schema` null, `identity_strategy`
 * strict, `depends_on` [], `handler_config` {}, `timeout_ms` null, `environments` {},
 * and each retry field missing from a step's `retry` taken from `defaults.retry`.
 * The stored body and its hash are therefore of the effective template: a version
 * keeps its behaviour even if the server's default retry policy changes later.
 */
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { canonicalHash, pointer } from './canonical-json.js';
import type { Violation } from './errors.js';
import {
  IdentityStrategy,
  templateKey,
  type Backoff,
  type EnvironmentOverride,
  type RetryPolicy,
  type StepOverride,
  type StepTemplate,
  type TaskTemplate,
} from './template.js';
import { assertValidTemplate, overrideStep, templateInvalid } from './template-validation.js';

/** What parsing fills in where a document is silent. */
export interface TemplateDefaults {
  /** Per-field defaults for every step's retry policy (normally the engine's `default_retry`). */
  readonly retry: RetryPolicy;
}

/** A retry policy in document form. */
export interface RetryDocument {
  max_attempts: number;
  backoff: Backoff;
  base_ms: number;
  max_ms: number;
  jitter: number;
}

/** A step in document form. */
export interface StepDocument {
  name: string;
  handler: string;
  depends_on: string[];
  handler_config: Record<string, unknown>;
  retry: RetryDocument;
  timeout_ms: number | null;
}

/** An environment's change to one step, in document form; only the keys it changes are present. */
export interface StepOverrideDocument {
  handler?: string;
  handler_config?: Record<string, unknown>;
  retry?: Partial<RetryDocument>;
  timeout_ms?: number | null;
}

/** A whole template in document form, every default filled in (what `templateAsDocument` returns). */
export interface TemplateDocument {
  namespace: string;
  name: string;
  version: string;
  description: string;
  context_schema: Record<string, unknown> | null;
  identity_strategy: IdentityStrategy;
  steps: StepDocument[];
  environments: Record<string, { steps: Record<string, StepOverrideDocument> }>;
}

const jsonObject = () => z.record(z.string(), z.unknown());
const text = (what: string, hint = '') =>
  z.string({ error: (issue) => (issue.input === undefined ? `${what} is required` : `${what} must be a string${hint}`) });

const retrySchema = z.strictObject({
  max_attempts: z.number().nullish(),
  backoff: z.enum(['exponential', 'linear', 'fixed']).nullish(),
  base_ms: z.number().nullish(),
  max_ms: z.number().nullish(),
  jitter: z.number().nullish(),
});

const stepSchema = z.strictObject({
  name: text('name'),
  handler: text('handler'),
  depends_on: z.array(text('each dependency')).nullish(),
  handler_config: jsonObject().nullish(),
  retry: retrySchema.nullish(),
  timeout_ms: z.number().nullish(),
});

const overrideSchema = z.strictObject({
  handler: text('handler').nullish(),
  handler_config: jsonObject().nullish(),
  retry: retrySchema.nullish(),
  timeout_ms: z.number().nullish(),
});

const templateSchema = z.strictObject({
  namespace: text('namespace'),
  name: text('name'),
  version: text('version', ' (quote numeric versions in YAML, e.g. "1.0")'),
  description: text('description').nullish(),
  context_schema: jsonObject().nullish(),
  identity_strategy: z.enum(['strict', 'caller_provided', 'always_unique']).nullish(),
  steps: z.array(stepSchema),
  environments: z.record(z.string(), z.strictObject({ steps: z.record(z.string(), overrideSchema).nullish() })).nullish(),
});

type RetryInput = z.output<typeof retrySchema>;
type OverrideInput = z.output<typeof overrideSchema>;

/**
 * Parses and validates a template document (already decoded from YAML or JSON).
 * Throws ValidationError `TEMPLATE_INVALID` listing every violation by path: shape
 * problems (wrong types, unknown or missing keys) first on their own, since the rules
 * cannot be checked on a malformed document, otherwise every rule that is broken.
 */
export function parseTemplateDocument(doc: unknown, defaults: TemplateDefaults): TaskTemplate {
  const parsed = templateSchema.safeParse(doc);
  if (!parsed.success) throw templateInvalid(guessKey(doc), shapeViolations(parsed.error.issues, doc));
  const d = parsed.data;
  const template: TaskTemplate = {
    namespace: d.namespace,
    name: d.name,
    version: d.version,
    description: d.description ?? '',
    contextSchema: d.context_schema ?? null,
    identityStrategy: d.identity_strategy ?? IdentityStrategy.Strict,
    steps: d.steps.map(
      (s): StepTemplate => ({
        name: s.name,
        handler: s.handler,
        dependsOn: s.depends_on ?? [],
        handlerConfig: s.handler_config ?? {},
        retry: { ...defaults.retry, ...retryFromDocument(s.retry ?? {}) },
        timeoutMs: s.timeout_ms ?? null,
      }),
    ),
    environments: Object.fromEntries(
      Object.entries(d.environments ?? {}).map(([env, e]) => [
        env,
        { steps: Object.fromEntries(Object.entries(e.steps ?? {}).map(([name, o]) => [name, overrideFromDocument(o)])) },
      ]),
    ),
  };
  assertValidTemplate(template);
  return template;
}

/**
 * Parses a YAML (or JSON) text holding one template document. YAML 1.2 core schema,
 * duplicate keys refused, aliases limited; syntax errors are reported with line and
 * column as ValidationError `TEMPLATE_INVALID`.
 */
export function parseTemplateYaml(source: string, defaults: TemplateDefaults): TaskTemplate {
  const doc = parseDocument(source, { version: '1.2', schema: 'core', uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    const violations = doc.errors.map((e) => ({ path: '', message: `YAML ${e.code}: ${firstLine(e.message)}` }));
    throw templateInvalid('document', violations);
  }
  let value: unknown;
  try {
    // Unresolved aliases and alias bombs surface only here, as plain errors.
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw templateInvalid('document', [{ path: '', message: `YAML: ${firstLine(err instanceof Error ? err.message : String(err))}` }]);
  }
  return parseTemplateDocument(value, defaults);
}

/** The document form of a template, every default explicit; `parseTemplateDocument` of it gives the template back. */
export function templateAsDocument(t: TaskTemplate): TemplateDocument {
  return {
    namespace: t.namespace,
    name: t.name,
    version: t.version,
    description: t.description,
    context_schema: t.contextSchema === null ? null : { ...t.contextSchema },
    identity_strategy: t.identityStrategy,
    steps: t.steps.map((s) => ({
      name: s.name,
      handler: s.handler,
      depends_on: [...s.dependsOn],
      handler_config: { ...s.handlerConfig },
      retry: retryAsDocument(s.retry) as RetryDocument,
      timeout_ms: s.timeoutMs,
    })),
    environments: Object.fromEntries(
      Object.entries(t.environments).map(([env, e]) => [
        env,
        { steps: Object.fromEntries(Object.entries(e.steps).map(([name, o]) => [name, overrideAsDocument(o)])) },
      ]),
    ),
  };
}

/**
 * sha256 hex of the canonical JSON of the template's document form: independent of
 * key order (in handler_config and context_schema too), dependent on step order and
 * on the order of each `depends_on`. Equal hashes mean a repeated registration.
 */
export function templateBodyHash(t: TaskTemplate): string {
  return canonicalHash(templateAsDocument(t));
}

/**
 * The template as it runs in environment `env`: each overridden step gets its handler
 * and timeout replaced, its handler_config merged by top-level key and its retry
 * policy merged field by field. An environment without overrides returns `t` itself;
 * overrides naming unknown steps throw ValidationError `TEMPLATE_INVALID`. The result
 * keeps `environments` unchanged (applying the same environment again changes nothing).
 */
export function applyEnvironment(t: TaskTemplate, env: string): TaskTemplate {
  if (!Object.hasOwn(t.environments, env)) return t;
  const overrides = (t.environments[env] as EnvironmentOverride).steps;
  const known = new Set(t.steps.map((s) => s.name));
  const unknown: Violation[] = Object.keys(overrides)
    .filter((name) => !known.has(name))
    .map((name) => ({
      path: pointer(pointer('/environments', env) + '/steps', name),
      message: `environment '${env}' overrides unknown step '${name}'`,
    }));
  if (unknown.length > 0) throw templateInvalid(templateKey(t), unknown);
  return {
    ...t,
    steps: t.steps.map((s) => (Object.hasOwn(overrides, s.name) ? overrideStep(s, overrides[s.name]!) : s)),
  };
}

function retryFromDocument(r: RetryInput): Partial<RetryPolicy> {
  const out: { -readonly [K in keyof RetryPolicy]?: RetryPolicy[K] } = {};
  if (r.max_attempts != null) out.maxAttempts = r.max_attempts;
  if (r.backoff != null) out.backoff = r.backoff;
  if (r.base_ms != null) out.baseMs = r.base_ms;
  if (r.max_ms != null) out.maxMs = r.max_ms;
  if (r.jitter != null) out.jitter = r.jitter;
  return out;
}

function retryAsDocument(r: Partial<RetryPolicy>): Partial<RetryDocument> {
  const out: Partial<RetryDocument> = {};
  if (r.maxAttempts !== undefined) out.max_attempts = r.maxAttempts;
  if (r.backoff !== undefined) out.backoff = r.backoff;
  if (r.baseMs !== undefined) out.base_ms = r.baseMs;
  if (r.maxMs !== undefined) out.max_ms = r.maxMs;
  if (r.jitter !== undefined) out.jitter = r.jitter;
  return out;
}

function overrideFromDocument(o: OverrideInput): StepOverride {
  const out: { -readonly [K in keyof StepOverride]: StepOverride[K] } = {};
  if (o.handler != null) out.handler = o.handler;
  if (o.handler_config != null) out.handlerConfig = o.handler_config;
  if (o.retry != null) out.retry = retryFromDocument(o.retry);
  if (o.timeout_ms !== undefined) out.timeoutMs = o.timeout_ms;
  return out;
}

function overrideAsDocument(o: StepOverride): StepOverrideDocument {
  const out: StepOverrideDocument = {};
  if (o.handler !== undefined) out.handler = o.handler;
  if (o.handlerConfig !== undefined) out.handler_config = { ...o.handlerConfig };
  if (o.retry !== undefined) out.retry = retryAsDocument(o.retry);
  if (o.timeoutMs !== undefined) out.timeout_ms = o.timeoutMs;
  return out;
}

function firstLine(message: string): string {
  return (message.split('\n')[0] ?? '').replace(/:$/, '');
}

/** Zod issues as violations, with `step 'x':` in front when the issue is inside a named step. */
function shapeViolations(issues: readonly z.core.$ZodIssue[], doc: unknown): Violation[] {
  const out: Violation[] = [];
  for (const issue of issues) {
    const path = issue.path.reduce<string>((p, seg) => pointer(p, String(seg)), '');
    const prefix = stepPrefix(doc, issue.path);
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) out.push({ path: pointer(path, key), message: `${prefix}unknown key '${key}'` });
    } else {
      out.push({ path, message: `${prefix}${issue.message}` });
    }
  }
  return out;
}

function stepPrefix(doc: unknown, path: readonly PropertyKey[]): string {
  if (path[0] !== 'steps' || typeof path[1] !== 'number') return '';
  const steps = (doc as { steps?: unknown }).steps;
  const step: unknown = Array.isArray(steps) ? steps[path[1]] : undefined;
  const name = typeof step === 'object' && step !== null ? (step as { name?: unknown }).name : undefined;
  return typeof name === 'string' ? `step '${name}': ` : '';
}

function guessKey(doc: unknown): string {
  if (typeof doc !== 'object' || doc === null) return 'document';
  const d = doc as Record<string, unknown>;
  const [namespace, name, version] = [d['namespace'], d['name'], d['version']];
  if (typeof namespace !== 'string' || typeof name !== 'string' || typeof version !== 'string') return 'document';
  return templateKey({ namespace, name, version });
}
