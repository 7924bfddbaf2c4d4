/**
 * What a step handler receives, and how its outcome becomes a report.
 *
 * A handler is `async (step, ctx) => result`. Its resolved value (any JSON value;
 * `undefined` counts as null) becomes the step's result, passed to descendant steps
 * under the step's name. A thrown error becomes a failure as mapped by
 * {@link stepErrorFrom}.
 */
import type { StepError } from './gen/tasker/v1/common.js';
import type { StepAssignment } from './gen/tasker/v1/worker.js';
import { CancelledError, PermanentError, RetryableError } from './errors.js';
import { decodeJsonObject, encodeJson } from './internal/json.js';
import type { Logger } from './internal/logger.js';
import type { TemplateRef } from './models.js';

/** Frames kept in a reported backtrace (the server may keep fewer). */
export const MAX_BACKTRACE_FRAMES = 50;

/** One attempt of one step, as assigned to this worker. */
export interface Step {
  /** The step's id (`step_id` on the wire). */
  readonly id: string;
  /** 1-based attempt number; every report about this run carries it. */
  readonly attempt: number;
  /**
   * Number of the last attempt the step's current retry allowance permits:
   * `attempt === maxAttempts` is the last. It is the retry policy's `maxAttempts` until
   * an operator retries the step; attempt numbers then keep counting up and the server
   * sends the attempts already made plus the policy's `maxAttempts`.
   */
  readonly maxAttempts: number;
  readonly taskId: string;
  /** Step name from the template; the key of this step's result for its descendants. */
  readonly name: string;
  readonly handler: string;
  /** The task's template with its concrete version. */
  readonly template: TemplateRef;
  /** The task context. */
  readonly context: Record<string, unknown>;
  /** The step's handler_config, after the server's environment overrides. */
  readonly handlerConfig: Record<string, unknown>;
  /** Results of every ancestor step that has one, keyed by step name. */
  readonly ancestorResults: Record<string, unknown>;
  /** When the server times this attempt out; null when it sent none. `ctx.signal` aborts then. */
  readonly deadline: Date | null;
  /** The per-attempt timeout that produced the deadline (0 = unknown). */
  readonly timeoutMs: number;
  /** The task's correlation id; null when it has none. */
  readonly correlationId: string | null;
  /** The StepBatch that delivered the step. */
  readonly batchId: string;
}

/** The running attempt's side of the conversation with the worker. */
export interface StepContext {
  /**
   * Aborted when the handler should give up; `signal.reason` is a
   * {@link CancelledError} whose `kind` says why: the task was cancelled, the
   * deadline passed, the worker's stop grace period ran out, or the step is no longer
   * this worker's.
   */
  readonly signal: AbortSignal;
  /**
   * Reports progress (any JSON value), stored by the server and replayed to
   * `watchTask`. Resolves once the server has committed it; rejects with a
   * {@link ReportRejectedError} if the server refuses it, a {@link CancelledError} if
   * the step is taken away first, a {@link PermanentError} (code PAYLOAD_TOO_LARGE) if
   * it is larger than the server accepts, or a TypeError if it is not JSON. Not
   * awaiting it is fine: a rejection nobody waits for is ignored.
   */
  progress(payload: unknown): Promise<void>;
  /** Logger whose every line carries the step's ids. */
  readonly log: Logger;
}

/** A step handler. */
export type StepHandler<R = unknown> = (step: Step, ctx: StepContext) => R | Promise<R>;

/** A decoded assignment: the step, and the failure to report instead of running it when its JSON was unreadable. */
export interface DecodedAssignment {
  readonly step: Step;
  readonly invalid: StepError | null;
}

/** Decodes a StepAssignment; malformed JSON gives empty objects and a non-retryable INVALID_ASSIGNMENT failure. */
export function stepFromAssignment(a: StepAssignment, batchId: string): DecodedAssignment {
  const base = {
    id: a.stepId,
    attempt: a.attempt,
    maxAttempts: a.maxAttempts,
    taskId: a.taskId,
    name: a.stepName,
    handler: a.handler,
    template: { namespace: a.template?.namespace ?? '', name: a.template?.name ?? '', version: a.template?.version ?? '' },
    deadline: a.deadline ?? null,
    timeoutMs: a.timeoutMs,
    correlationId: a.correlationId || null,
    batchId,
  };
  try {
    const step: Step = {
      ...base,
      context: decodeJsonObject(a.contextJson, 'context_json'),
      handlerConfig: decodeJsonObject(a.handlerConfigJson, 'handler_config_json'),
      ancestorResults: decodeJsonObject(a.ancestorResultsJson, 'ancestor_results_json'),
    };
    return { step, invalid: null };
  } catch (err) {
    const invalid = failure('InvalidAssignment', `assignment JSON could not be decoded: ${(err as Error).message}`, false, {
      code: 'INVALID_ASSIGNMENT',
    });
    return { step: { ...base, context: {}, handlerConfig: {}, ancestorResults: {} }, invalid };
  }
}

/** A StepError from its parts. */
export function failure(
  errorClass: string,
  message: string,
  retryable: boolean,
  extra: { code?: string | null; retryAfterMs?: number | null; backtrace?: string[]; details?: Record<string, unknown> | null } = {},
): StepError {
  const error: StepError = {
    errorClass,
    message,
    backtrace: extra.backtrace ?? [],
    retryable,
    code: extra.code ?? '',
    detailsJson: Buffer.alloc(0),
  };
  if (extra.retryAfterMs !== undefined && extra.retryAfterMs !== null) error.retryAfterMs = extra.retryAfterMs;
  if (extra.details) {
    try {
      error.detailsJson = encodeJson(extra.details);
    } catch {
      error.detailsJson = encodeJson({ unserializable_details: String(extra.details) });
    }
  }
  return error;
}

/** Stack frames of an error, innermost first, as Node prints them (`at fn (file:line:col)`). */
export function backtraceOf(err: Error): string[] {
  const stack = typeof err.stack === 'string' ? err.stack : '';
  return stack
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.startsWith('at '))
    .slice(0, MAX_BACKTRACE_FRAMES);
}

function className(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value !== 'object' && typeof value !== 'function') return typeof value;
  const ctor = (value as { constructor?: { name?: unknown } }).constructor;
  if (ctor && typeof ctor.name === 'string' && ctor.name) return ctor.name;
  const name = (value as { name?: unknown }).name;
  return typeof name === 'string' && name ? name : 'Object';
}

/**
 * Maps what a handler threw to the StepError reported to the server:
 * - {@link PermanentError}: not retryable, with its `code` and `details`;
 * - {@link RetryableError}: retryable, with `retryAfterMs` when given;
 * - anything else: retryable, with the class name (`TypeError`), message and stack.
 */
export function stepErrorFrom(thrown: unknown): StepError {
  if (!(thrown instanceof Error)) {
    const text = typeof thrown === 'string' ? thrown : safeJson(thrown);
    return failure(className(thrown), `a non-Error value was thrown: ${text}`, true);
  }
  const backtrace = backtraceOf(thrown);
  const errorClass = className(thrown);
  const message = thrown.message || errorClass;
  if (thrown instanceof PermanentError) {
    return failure(errorClass, message, false, { code: thrown.code, details: thrown.details, backtrace });
  }
  if (thrown instanceof RetryableError) {
    return failure(errorClass, message, true, { code: thrown.code, details: thrown.details, retryAfterMs: thrown.retryAfterMs, backtrace });
  }
  const code = thrown instanceof CancelledError ? `STEP_${thrown.kind.toUpperCase()}` : null;
  return failure(errorClass, message, true, { code, backtrace });
}

function safeJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
