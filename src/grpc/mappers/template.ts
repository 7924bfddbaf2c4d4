/**
 * TemplateService messages ↔ domain templates. Inbound, a proto TaskTemplate becomes
 * the snake_case template document and goes through `parseTemplateDocument`, so a
 * template registered over gRPC is checked by exactly the rules a YAML file is: zero
 * and unspecified proto values mean "not set" (`max_attempts` 0, `backoff`
 * UNSPECIFIED, `timeout_ms` 0, empty strings) and take the defaults.
 */
import type { TemplateDefaults } from '../../domain/template-document.js';
import { applyEnvironment, parseTemplateDocument } from '../../domain/template-document.js';
import { templateInvalid } from '../../domain/template-validation.js';
import type { Violation } from '../../domain/errors.js';
import type { RetryPolicy as DomainRetryPolicy, StepOverride as DomainStepOverride, TaskTemplate as DomainTemplate } from '../../domain/template.js';
import { Backoff as DomainBackoff, IdentityStrategy as DomainIdentity } from '../../domain/template.js';
import type { Violation as ProtoViolation } from '../../gen/tasker/v1/common.js';
import { Backoff, IdentityStrategy } from '../../gen/tasker/v1/template.js';
import type { RetryPolicy, StepOverride, StepTemplate, TaskTemplate } from '../../gen/tasker/v1/template.js';

/** How inbound templates are completed: the retry defaults and the server's environment. */
export interface TemplateMapping {
  readonly defaults: TemplateDefaults;
  /** `config.environment`: its overrides are applied before a template is stored, as for template files. */
  readonly environment: string;
}

const IDENTITY_IN: Readonly<Record<number, string>> = {
  [IdentityStrategy.IDENTITY_STRATEGY_STRICT]: DomainIdentity.Strict,
  [IdentityStrategy.IDENTITY_STRATEGY_CALLER_PROVIDED]: DomainIdentity.CallerProvided,
  [IdentityStrategy.IDENTITY_STRATEGY_ALWAYS_UNIQUE]: DomainIdentity.AlwaysUnique,
};
const IDENTITY_OUT: Readonly<Record<DomainIdentity, IdentityStrategy>> = {
  strict: IdentityStrategy.IDENTITY_STRATEGY_STRICT,
  caller_provided: IdentityStrategy.IDENTITY_STRATEGY_CALLER_PROVIDED,
  always_unique: IdentityStrategy.IDENTITY_STRATEGY_ALWAYS_UNIQUE,
};
const BACKOFF_IN: Readonly<Record<number, string>> = {
  [Backoff.BACKOFF_EXPONENTIAL]: DomainBackoff.Exponential,
  [Backoff.BACKOFF_LINEAR]: DomainBackoff.Linear,
  [Backoff.BACKOFF_FIXED]: DomainBackoff.Fixed,
};
const BACKOFF_OUT: Readonly<Record<DomainBackoff, Backoff>> = {
  exponential: Backoff.BACKOFF_EXPONENTIAL,
  linear: Backoff.BACKOFF_LINEAR,
  fixed: Backoff.BACKOFF_FIXED,
};

/** An enum value the server does not know becomes a string the document parser refuses by path. */
const unknownEnum = (value: number): string => `unknown enum value ${value}`;

function retryAsDocument(r: RetryPolicy | undefined): Record<string, unknown> | null {
  if (!r) return null;
  const out: Record<string, unknown> = {};
  if (r.maxAttempts !== 0) out.max_attempts = r.maxAttempts;
  if (r.backoff !== Backoff.BACKOFF_UNSPECIFIED) out.backoff = BACKOFF_IN[r.backoff] ?? unknownEnum(r.backoff);
  if (r.baseMs !== undefined) out.base_ms = r.baseMs;
  if (r.maxMs !== undefined) out.max_ms = r.maxMs;
  if (r.jitter !== undefined) out.jitter = r.jitter;
  return out;
}

function stepAsDocument(s: StepTemplate): Record<string, unknown> {
  return {
    name: s.name,
    handler: s.handler,
    depends_on: s.dependsOn,
    handler_config: s.handlerConfig ?? null,
    retry: retryAsDocument(s.retry),
    timeout_ms: s.timeoutMs === 0 ? null : s.timeoutMs,
  };
}

function overrideAsDocument(o: StepOverride): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (o.handler !== '') out.handler = o.handler;
  if (o.handlerConfig !== undefined) out.handler_config = o.handlerConfig;
  if (o.retry !== undefined) out.retry = retryAsDocument(o.retry);
  // 0 = back to the server's default timeout (null in the document); unset = keep the step's.
  if (o.timeoutMs !== undefined) out.timeout_ms = o.timeoutMs === 0 ? null : o.timeoutMs;
  return out;
}

function environmentsAsDocument(t: TaskTemplate): { environments: Record<string, unknown>; violations: Violation[] } {
  const environments: Record<string, unknown> = {};
  const violations: Violation[] = [];
  for (const [env, override] of Object.entries(t.environments)) {
    const steps: Record<string, unknown> = {};
    (override?.steps ?? []).forEach((o, i) => {
      if (Object.hasOwn(steps, o.name)) {
        violations.push({ path: `/environments/${env}/steps/${i}`, message: `environment '${env}' overrides step '${o.name}' twice` });
      }
      steps[o.name] = overrideAsDocument(o);
    });
    environments[env] = { steps };
  }
  return { environments, violations };
}

/** The template document a proto TaskTemplate stands for (created_at and body_hash ignored). */
export function templateDocumentFromProto(t: TaskTemplate): { document: Record<string, unknown>; violations: Violation[] } {
  const { environments, violations } = environmentsAsDocument(t);
  const document: Record<string, unknown> = {
    namespace: t.namespace,
    name: t.name,
    version: t.version,
    description: t.description,
    context_schema: t.contextSchema ?? null,
    identity_strategy:
      t.identityStrategy === IdentityStrategy.IDENTITY_STRATEGY_UNSPECIFIED
        ? null
        : (IDENTITY_IN[t.identityStrategy] ?? unknownEnum(t.identityStrategy)),
    steps: t.steps.map(stepAsDocument),
    environments,
  };
  return { document, violations };
}

/**
 * A proto TaskTemplate as a valid domain template, with the server environment's
 * overrides applied (as for template files). Throws ValidationError `TEMPLATE_INVALID`
 * with every violation; a missing template is one violation at the root.
 */
export function templateFromProto(t: TaskTemplate | undefined, mapping: TemplateMapping): DomainTemplate {
  if (!t) throw templateInvalid('(missing)', [{ path: '', message: 'template is required' }]);
  const { document, violations } = templateDocumentFromProto(t);
  if (violations.length > 0) throw templateInvalid(`${t.namespace}/${t.name}@${t.version}`, violations);
  return applyEnvironment(parseTemplateDocument(document, mapping.defaults), mapping.environment);
}

function retryToProto(r: Partial<DomainRetryPolicy>): RetryPolicy {
  return {
    maxAttempts: r.maxAttempts ?? 0,
    backoff: r.backoff ? BACKOFF_OUT[r.backoff] : Backoff.BACKOFF_UNSPECIFIED,
    baseMs: r.baseMs,
    maxMs: r.maxMs,
    jitter: r.jitter,
  };
}

function overrideToProto(name: string, o: DomainStepOverride): StepOverride {
  return {
    name,
    handler: o.handler ?? '',
    handlerConfig: o.handlerConfig ? { ...o.handlerConfig } : undefined,
    retry: o.retry ? retryToProto(o.retry) : undefined,
    timeoutMs: o.timeoutMs === undefined ? undefined : (o.timeoutMs ?? 0),
  };
}

/** A stored template for the wire, with when it was stored and its body hash. */
export function templateToProto(t: DomainTemplate, stored: { createdAt?: Date | null; bodyHash?: string | null } = {}): TaskTemplate {
  return {
    namespace: t.namespace,
    name: t.name,
    version: t.version,
    description: t.description,
    contextSchema: t.contextSchema ? { ...t.contextSchema } : undefined,
    identityStrategy: IDENTITY_OUT[t.identityStrategy],
    steps: t.steps.map(
      (s): StepTemplate => ({
        name: s.name,
        handler: s.handler,
        dependsOn: [...s.dependsOn],
        handlerConfig: { ...s.handlerConfig },
        retry: retryToProto(s.retry),
        timeoutMs: s.timeoutMs ?? 0,
      }),
    ),
    environments: Object.fromEntries(
      Object.entries(t.environments).map(([env, e]) => [
        env,
        { steps: Object.entries(e.steps).map(([name, o]) => overrideToProto(name, o)) },
      ]),
    ),
    createdAt: stored.createdAt ?? undefined,
    bodyHash: stored.bodyHash ?? '',
  };
}

/** Domain violations for the wire. */
export function violationsToProto(violations: readonly Violation[]): ProtoViolation[] {
  return violations.map((v) => ({ path: v.path, message: v.message }));
}
