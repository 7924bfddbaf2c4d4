/**
 * Task templates as plain objects, in and out. The shape is the proto's with
 * camelCase names; enums are short lowercase strings (`identityStrategy: 'strict'`,
 * `backoff: 'linear'`).
 */
import {
  Backoff,
  IdentityStrategy,
  backoffToJSON,
  identityStrategyToJSON,
} from './gen/tasker/v1/template.js';
import type { RetryPolicy as ProtoRetryPolicy, TaskTemplate as ProtoTaskTemplate } from './gen/tasker/v1/template.js';

/** How duplicate `createTask` requests are recognized. */
export type IdentityStrategyName = 'strict' | 'caller_provided' | 'always_unique';
/** Shape of the delay between attempts. */
export type BackoffName = 'exponential' | 'linear' | 'fixed';

/** When and how often a failed step is attempted again; unset fields take the server's defaults. */
export interface RetryPolicyInput {
  maxAttempts?: number;
  backoff?: BackoffName;
  baseMs?: number;
  maxMs?: number;
  jitter?: number;
}

/** One step of a template's DAG. */
export interface StepTemplateInput {
  name: string;
  handler: string;
  dependsOn?: string[];
  handlerConfig?: Record<string, unknown>;
  retry?: RetryPolicyInput;
  /** Per-attempt timeout; 0/unset = the server's default. */
  timeoutMs?: number;
}

/** Replaces parts of one step's definition in one environment. */
export interface StepOverrideInput {
  name: string;
  handlerConfig?: Record<string, unknown>;
  retry?: RetryPolicyInput;
  timeoutMs?: number;
  handler?: string;
}

/** A template to register or validate. */
export interface TemplateInput {
  namespace: string;
  name: string;
  version: string;
  description?: string;
  /** JSON Schema every task context must satisfy. */
  contextSchema?: Record<string, unknown>;
  identityStrategy?: IdentityStrategyName;
  steps: StepTemplateInput[];
  /** Per-environment overrides keyed by environment name. */
  environments?: Record<string, { steps: StepOverrideInput[] }>;
}

/** A stored template, as the server returns it. */
export interface TemplateDefinition {
  readonly namespace: string;
  readonly name: string;
  readonly version: string;
  readonly description: string;
  readonly contextSchema: Record<string, unknown> | null;
  readonly identityStrategy: IdentityStrategyName;
  readonly steps: ReadonlyArray<Required<Omit<StepTemplateInput, 'retry'>> & { readonly retry: Readonly<RetryPolicyInput> }>;
  readonly environments: Readonly<Record<string, { readonly steps: readonly StepOverrideInput[] }>>;
  readonly createdAt: Date | null;
  /** Hex digest of the canonical template body. */
  readonly bodyHash: string;
}

function enumValue<E extends number>(table: Record<string, E | string>, prefix: string, name: string | undefined, what: string): E {
  if (name === undefined) return 0 as E;
  const value = table[`${prefix}${name.toUpperCase()}`];
  if (typeof value !== 'number') throw new RangeError(`unknown ${what} "${name}"`);
  return value;
}

function retryToProto(retry: RetryPolicyInput | undefined): ProtoRetryPolicy | undefined {
  if (!retry) return undefined;
  const out: ProtoRetryPolicy = {
    maxAttempts: retry.maxAttempts ?? 0,
    backoff: enumValue<Backoff>(Backoff as unknown as Record<string, Backoff>, 'BACKOFF_', retry.backoff, 'backoff'),
  };
  if (retry.baseMs !== undefined) out.baseMs = retry.baseMs;
  if (retry.maxMs !== undefined) out.maxMs = retry.maxMs;
  if (retry.jitter !== undefined) out.jitter = retry.jitter;
  return out;
}

/** A template object → the wire message. Throws RangeError for an unknown enum name. */
export function templateToProto(t: TemplateInput): ProtoTaskTemplate {
  const environments: ProtoTaskTemplate['environments'] = {};
  for (const [env, override] of Object.entries(t.environments ?? {})) {
    environments[env] = {
      steps: override.steps.map((s) => {
        const step: ProtoTaskTemplate['environments'][string]['steps'][number] = {
          name: s.name,
          handlerConfig: s.handlerConfig,
          retry: retryToProto(s.retry),
          handler: s.handler ?? '',
        };
        if (s.timeoutMs !== undefined) step.timeoutMs = s.timeoutMs;
        return step;
      }),
    };
  }
  return {
    namespace: t.namespace,
    name: t.name,
    version: t.version,
    description: t.description ?? '',
    contextSchema: t.contextSchema,
    identityStrategy: enumValue<IdentityStrategy>(
      IdentityStrategy as unknown as Record<string, IdentityStrategy>,
      'IDENTITY_STRATEGY_',
      t.identityStrategy,
      'identity strategy',
    ),
    steps: t.steps.map((s) => ({
      name: s.name,
      handler: s.handler,
      dependsOn: s.dependsOn ?? [],
      handlerConfig: s.handlerConfig,
      retry: retryToProto(s.retry),
      timeoutMs: s.timeoutMs ?? 0,
    })),
    environments,
    bodyHash: '',
  };
}

function retryFromProto(r: ProtoRetryPolicy | undefined): RetryPolicyInput {
  if (!r) return {};
  const out: RetryPolicyInput = {};
  if (r.maxAttempts) out.maxAttempts = r.maxAttempts;
  if (r.backoff !== Backoff.BACKOFF_UNSPECIFIED) out.backoff = backoffToJSON(r.backoff).replace('BACKOFF_', '').toLowerCase() as BackoffName;
  if (r.baseMs !== undefined) out.baseMs = r.baseMs;
  if (r.maxMs !== undefined) out.maxMs = r.maxMs;
  if (r.jitter !== undefined) out.jitter = r.jitter;
  return out;
}

/** The wire message → a template object. */
export function templateFromProto(t: ProtoTaskTemplate): TemplateDefinition {
  const strategy = t.identityStrategy === IdentityStrategy.IDENTITY_STRATEGY_UNSPECIFIED ? IdentityStrategy.IDENTITY_STRATEGY_STRICT : t.identityStrategy;
  const environments: Record<string, { steps: StepOverrideInput[] }> = {};
  for (const [env, override] of Object.entries(t.environments)) {
    environments[env] = {
      steps: override.steps.map((s) => {
        const step: StepOverrideInput = { name: s.name };
        if (s.handlerConfig) step.handlerConfig = s.handlerConfig;
        if (s.retry) step.retry = retryFromProto(s.retry);
        if (s.timeoutMs !== undefined) step.timeoutMs = s.timeoutMs;
        if (s.handler) step.handler = s.handler;
        return step;
      }),
    };
  }
  return {
    namespace: t.namespace,
    name: t.name,
    version: t.version,
    description: t.description,
    contextSchema: t.contextSchema ?? null,
    identityStrategy: identityStrategyToJSON(strategy).replace('IDENTITY_STRATEGY_', '').toLowerCase() as IdentityStrategyName,
    steps: t.steps.map((s) => ({
      name: s.name,
      handler: s.handler,
      dependsOn: [...s.dependsOn],
      handlerConfig: s.handlerConfig ?? {},
      retry: retryFromProto(s.retry),
      timeoutMs: s.timeoutMs,
    })),
    environments,
    createdAt: t.createdAt ?? null,
    bodyHash: t.bodyHash,
  };
}
