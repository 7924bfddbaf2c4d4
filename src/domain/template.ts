/**
 * The task-template model: a versioned DAG of named steps, each with a handler,
 * dependencies, retry policy and timeout, plus an optional JSON Schema for the task
 * context, an identity strategy and per-environment overrides.
 *
 * These are the camelCase in-memory types. The snake_case document form (YAML files,
 * the `task_templates.body` column, the wire) is handled by `template-document.ts`;
 * the rules a template must satisfy live in `template-validation.ts`.
 */

/** Shape of the delay between attempts of a step (see `retry-policy.ts`). */
export const Backoff = {
  /** Delay after attempt n is `baseMs * 2^(n-1)`. */
  Exponential: 'exponential',
  /** Delay after attempt n is `baseMs * n`. */
  Linear: 'linear',
  /** Delay is always `baseMs`. */
  Fixed: 'fixed',
} as const;
export type Backoff = (typeof Backoff)[keyof typeof Backoff];

/** Every backoff kind, in declaration order. */
export const BACKOFF_KINDS: readonly Backoff[] = Object.values(Backoff);

/** When and how often a failed step is attempted again. */
export interface RetryPolicy {
  /** Total attempts including the first; 1 = never retry. */
  readonly maxAttempts: number;
  readonly backoff: Backoff;
  /** Base delay in milliseconds. */
  readonly baseMs: number;
  /** Upper bound in milliseconds for any computed delay. */
  readonly maxMs: number;
  /** Fraction 0..1 of the delay that is randomized (uniform in `d * (1 ± jitter)`). */
  readonly jitter: number;
}

/** How duplicate task creations are recognized (see `identity.ts`). */
export const IdentityStrategy = {
  /** Identity = hash of the template ref and the canonical context. */
  Strict: 'strict',
  /** Identity = hash of the template ref and a caller-supplied idempotency key (required). */
  CallerProvided: 'caller_provided',
  /** Every creation makes a new task (unless the caller supplies an idempotency key). */
  AlwaysUnique: 'always_unique',
} as const;
export type IdentityStrategy = (typeof IdentityStrategy)[keyof typeof IdentityStrategy];

/** Every identity strategy, in declaration order. */
export const IDENTITY_STRATEGIES: readonly IdentityStrategy[] = Object.values(IdentityStrategy);

/** One step of a template's DAG. */
export interface StepTemplate {
  /** Unique within the template; also the key of this step's result for its descendants. */
  readonly name: string;
  /** Handler a worker must serve to run this step (matched exactly). */
  readonly handler: string;
  /** Names of the steps that must be satisfied before this one is ready; [] = a root. */
  readonly dependsOn: readonly string[];
  /** Static JSON configuration handed to the handler with every attempt. */
  readonly handlerConfig: Readonly<Record<string, unknown>>;
  readonly retry: RetryPolicy;
  /** Per-attempt timeout in milliseconds; null = the server's default (none unless configured). */
  readonly timeoutMs: number | null;
}

/** Replaces parts of one step's definition in one environment; absent fields keep the step's value. */
export interface StepOverride {
  /** Replaces the handler. */
  readonly handler?: string;
  /** Merged over the step's handlerConfig: top-level keys here replace the step's, others are kept. */
  readonly handlerConfig?: Readonly<Record<string, unknown>>;
  /** Merged field by field over the step's retry policy. */
  readonly retry?: Partial<RetryPolicy>;
  /** Replaces the timeout; null resets it to the server's default. */
  readonly timeoutMs?: number | null;
}

/** The overrides one environment applies, keyed by step name. */
export interface EnvironmentOverride {
  readonly steps: Readonly<Record<string, StepOverride>>;
}

/** One version of a workflow definition, `namespace/name@version`. */
export interface TaskTemplate {
  readonly namespace: string;
  readonly name: string;
  readonly version: string;
  readonly description: string;
  /** JSON Schema every task context must satisfy; null = any JSON object. */
  readonly contextSchema: Readonly<Record<string, unknown>> | null;
  readonly identityStrategy: IdentityStrategy;
  /** In declaration order; the order is part of the template (step positions, stable sorting). */
  readonly steps: readonly StepTemplate[];
  /** Per-environment overrides keyed by environment name (e.g. `production`, `test`). */
  readonly environments: Readonly<Record<string, EnvironmentOverride>>;
}

/** Names one template version. */
export interface TemplateRef {
  readonly namespace: string;
  readonly name: string;
  readonly version: string;
}

/** Stable error code of every template validation failure. */
export const TEMPLATE_INVALID = 'TEMPLATE_INVALID';

/**
 * Lower-case identifier used for namespaces, template names, step names and environment
 * names: starts with a letter, then letters, digits, `_`, `.` or `-`; at most 128 chars.
 */
export const NAME_PATTERN = /^[a-z][a-z0-9_.-]{0,127}$/;

/**
 * Template versions: any 1..64 characters of letters, digits, `.`, `_`, `+`, `-`,
 * starting with a letter or digit. Semantic versions (`1.2.0`, `2.0.0-rc.1+build.5`)
 * are recommended, but `3` or `2024-06` are accepted too; versions are compared for
 * equality only, never ordered. `/`, `@` and whitespace are excluded so that
 * `templateKey` is unambiguous.
 */
export const VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;

/**
 * Handler names: 1..255 printable characters without whitespace, so every language's
 * idiom fits (`payments.charge`, `Payments::ChargeCard`, `payments/charge`).
 */
export const HANDLER_PATTERN = /^[\x21-\x7e]{1,255}$/;

/** Largest millisecond value a template may hold (PostgreSQL `int`, about 24.8 days). */
export const MAX_MS = 2_147_483_647;

/** Largest `maxAttempts` a retry policy may have. */
export const MAX_ATTEMPTS_LIMIT = 100;

/** `namespace/name@version`, the human-readable key of a template version. */
export function templateKey(ref: TemplateRef): string {
  return `${ref.namespace}/${ref.name}@${ref.version}`;
}
