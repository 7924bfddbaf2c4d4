/**
 * Tasker's errors, in two families.
 *
 * - Server errors: {@link TaskerError} and one subclass per gRPC status, thrown by
 *   {@link TaskerClient} methods and reported by a {@link Worker} the server refuses.
 *   Each carries the stable reason `code` from the `tasker-error-code` trailer (e.g.
 *   `TASK_NOT_FOUND`), the numeric `grpcCode`, and the structured `details` from
 *   `tasker-error-details-bin`. {@link fromGrpcError} builds them.
 * - Handler errors: {@link PermanentError} and {@link RetryableError}, thrown *by step
 *   handlers* to say how an attempt ended. Anything else a handler throws is reported
 *   as a retryable failure. {@link CancelledError} is the reason a step's
 *   `ctx.signal` is aborted with.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { Metadata } from '@grpc/grpc-js';

/** Trailing-metadata key holding the stable reason code. */
export const ERROR_CODE_KEY = 'tasker-error-code';
/** Trailing-metadata key holding UTF-8 JSON details. */
export const ERROR_DETAILS_KEY = 'tasker-error-details-bin';

/** One problem found while validating input: where it is and what is wrong. */
export interface Violation {
  readonly path: string;
  readonly message: string;
}

/** Constructor options of {@link TaskerError}. */
export interface TaskerErrorOptions {
  /** Stable reason; defaults to the status name (`INTERNAL`, `UNAVAILABLE`, ...). */
  code?: string | null;
  grpcCode?: GrpcStatus;
  details?: Record<string, unknown>;
  cause?: unknown;
}

/**
 * Thrown when the Tasker server refuses a call. `code` is the server's stable reason
 * (`TASK_NOT_FOUND`, `TEMPLATE_INVALID`, `SESSION_EXPIRED`, ...) or, when it sent none
 * (INTERNAL, transport failures), the gRPC status name.
 */
export class TaskerError extends Error {
  readonly code: string;
  readonly grpcCode: GrpcStatus;
  readonly details: Record<string, unknown>;

  constructor(message: string, options: TaskerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.grpcCode = options.grpcCode ?? GrpcStatus.UNKNOWN;
    this.code = options.code || statusName(this.grpcCode);
    this.details = options.details ?? {};
  }
}

/** Thrown on INVALID_ARGUMENT; `violations` lists each problem by path. */
export class InvalidArgumentError extends TaskerError {
  readonly violations: readonly Violation[];

  constructor(message: string, options: TaskerErrorOptions = {}) {
    super(message, options);
    const raw = this.details.violations;
    this.violations = Array.isArray(raw)
      ? raw
          .filter((v): v is Record<string, unknown> => typeof v === 'object' && v !== null)
          .map((v) => ({ path: String(v.path ?? ''), message: String(v.message ?? '') }))
      : [];
  }
}

/** Thrown on NOT_FOUND (`TASK_NOT_FOUND`, `STEP_NOT_FOUND`, `TEMPLATE_NOT_FOUND`, ...). */
export class NotFoundError extends TaskerError {}
/** Thrown on ALREADY_EXISTS, e.g. a template version registered again with a different body. */
export class AlreadyExistsError extends TaskerError {}
/** Thrown on FAILED_PRECONDITION: the current state does not allow the operation. */
export class FailedPreconditionError extends TaskerError {}
/** Thrown on UNAUTHENTICATED: the token is missing or unknown. */
export class UnauthenticatedError extends TaskerError {}
/** Thrown on PERMISSION_DENIED: the token lacks the role or namespace the call needs. */
export class PermissionDeniedError extends TaskerError {}
/** Thrown on RESOURCE_EXHAUSTED: a configured limit was exceeded. */
export class ResourceExhaustedError extends TaskerError {}
/** Thrown on UNAVAILABLE: the server is unreachable or shutting down; safe to retry. */
export class UnavailableError extends TaskerError {}
/** Thrown by `TaskerClient.waitForTask` when the task is not terminal in time (code `WAIT_TIMEOUT`). */
export class WaitTimeoutError extends TaskerError {}

const BY_STATUS: Partial<Record<GrpcStatus, new (message: string, options?: TaskerErrorOptions) => TaskerError>> = {
  [GrpcStatus.INVALID_ARGUMENT]: InvalidArgumentError,
  [GrpcStatus.NOT_FOUND]: NotFoundError,
  [GrpcStatus.ALREADY_EXISTS]: AlreadyExistsError,
  [GrpcStatus.FAILED_PRECONDITION]: FailedPreconditionError,
  [GrpcStatus.UNAUTHENTICATED]: UnauthenticatedError,
  [GrpcStatus.PERMISSION_DENIED]: PermissionDeniedError,
  [GrpcStatus.RESOURCE_EXHAUSTED]: ResourceExhaustedError,
  [GrpcStatus.UNAVAILABLE]: UnavailableError,
};

/** `NOT_FOUND` for 5; `UNKNOWN` for anything grpc-js does not name. */
export function statusName(code: GrpcStatus): string {
  const name = (GrpcStatus as unknown as Record<number, string | undefined>)[code];
  return name ?? 'UNKNOWN';
}

/** What a failed call reports: a grpc-js `ServiceError` or a stream's `StatusObject`. */
export interface GrpcStatusLike {
  readonly code: number;
  readonly details?: string;
  readonly message?: string;
  readonly metadata?: Metadata;
}

function isStatusLike(value: unknown): value is GrpcStatusLike {
  return typeof value === 'object' && value !== null && typeof (value as { code?: unknown }).code === 'number';
}

function firstValue(metadata: Metadata | undefined, key: string): string | Buffer | undefined {
  return metadata?.get(key)[0];
}

function decodeDetails(raw: string | Buffer | undefined): Record<string, unknown> {
  if (raw === undefined) return {};
  try {
    const value: unknown = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

/**
 * Turns a failed gRPC call (a `ServiceError`, a `StatusObject`, or anything thrown)
 * into the matching {@link TaskerError} subclass, reading the reason and details from
 * its trailing metadata. A TaskerError is returned unchanged.
 */
export function fromGrpcError(err: unknown): TaskerError {
  if (err instanceof TaskerError) return err;
  if (!isStatusLike(err)) {
    const message = err instanceof Error ? err.message : String(err);
    return new TaskerError(message, { cause: err });
  }
  const grpcCode = err.code as GrpcStatus;
  const rawCode = firstValue(err.metadata, ERROR_CODE_KEY);
  const code = rawCode === undefined ? null : typeof rawCode === 'string' ? rawCode : rawCode.toString('utf8');
  const details = decodeDetails(firstValue(err.metadata, ERROR_DETAILS_KEY));
  const message = err.details || err.message || statusName(grpcCode);
  const Class = BY_STATUS[grpcCode] ?? TaskerError;
  return new Class(message, { code, grpcCode, details, cause: err instanceof Error ? err : undefined });
}

/** Options of the handler errors. */
export interface HandlerErrorOptions {
  /** Application-defined machine-readable reason, e.g. `CARD_DECLINED`. */
  code?: string;
  /** JSON object stored with the failure. */
  details?: Record<string, unknown>;
  cause?: unknown;
}

/** Throw from a handler to fail the attempt for good: the step becomes `error` whatever attempts remain. */
export class PermanentError extends Error {
  readonly code: string | null;
  readonly details: Record<string, unknown> | null;

  constructor(message: string, options: HandlerErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code ?? null;
    this.details = options.details ?? null;
  }
}

/** Options of {@link RetryableError}. */
export interface RetryableErrorOptions extends HandlerErrorOptions {
  /** Delay before the next attempt, replacing the template's backoff (0 = at once). */
  retryAfterMs?: number;
}

/**
 * Throw from a handler to fail the attempt and ask for another one, after
 * `retryAfterMs` when given (else the step's retry policy decides). Retries stop when
 * the step's `maxAttempts` is exhausted.
 */
export class RetryableError extends Error {
  readonly retryAfterMs: number | null;
  readonly code: string | null;
  readonly details: Record<string, unknown> | null;

  constructor(message: string, options: RetryableErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    const after = options.retryAfterMs;
    if (after !== undefined && !(Number.isFinite(after) && after >= 0)) throw new RangeError('retryAfterMs must be a number >= 0');
    this.name = new.target.name;
    this.retryAfterMs = after === undefined ? null : Math.round(after);
    this.code = options.code ?? null;
    this.details = options.details ?? null;
  }
}

/**
 * Why a step's `ctx.signal` was aborted: `cancelled` (its task was cancelled),
 * `deadline` (the attempt's timeout passed), `stopping` (the worker's stop grace
 * period ran out), `lost` (the step is no longer this worker's: its lease expired, a
 * report was refused as stale, or the session was replaced).
 */
export type CancelKind = 'cancelled' | 'deadline' | 'stopping' | 'lost';

/** The `reason` of an aborted `ctx.signal`; a handler may rethrow it. */
export class CancelledError extends Error {
  readonly kind: CancelKind;

  constructor(kind: CancelKind, message: string) {
    super(message);
    this.name = new.target.name;
    this.kind = kind;
  }
}

/** Reported (`error` event, `ctx.progress` rejection) when the server refuses a step report. */
export class ReportRejectedError extends Error {
  /** The RejectReason without its prefix: `STALE_ATTEMPT`, `TASK_CANCELLED`, `PAYLOAD_TOO_LARGE`, ... */
  readonly reason: string;
  readonly stepId: string;
  readonly attempt: number;
  readonly reportId: number;

  constructor(fields: { reason: string; stepId: string; attempt: number; reportId: number; message: string }) {
    super(`report ${fields.reportId} for step ${fields.stepId} attempt ${fields.attempt} rejected (${fields.reason}): ${fields.message}`);
    this.name = new.target.name;
    this.reason = fields.reason;
    this.stepId = fields.stepId;
    this.attempt = fields.attempt;
    this.reportId = fields.reportId;
  }
}
