/**
 * Tasker's error vocabulary. Every condition a caller can act on has one subclass
 * with a stable string `code`; `grpc/errors.ts` is the single place that maps these
 * to gRPC status codes. Anything that is not an AppError is an internal error and is
 * never shown to callers in detail.
 */

/** What kind of failure this is, independent of transport. Mapped 1:1 onto gRPC status codes. */
export const ErrorCategory = {
  InvalidArgument: 'invalid_argument',
  NotFound: 'not_found',
  AlreadyExists: 'already_exists',
  FailedPrecondition: 'failed_precondition',
  Unauthenticated: 'unauthenticated',
  PermissionDenied: 'permission_denied',
  ResourceExhausted: 'resource_exhausted',
  Unavailable: 'unavailable',
  OutOfRange: 'out_of_range',
} as const;
export type ErrorCategory = (typeof ErrorCategory)[keyof typeof ErrorCategory];

/** Base class for every error Tasker reports to a caller on purpose. */
export abstract class AppError extends Error {
  /** Stable machine-readable reason, e.g. `TEMPLATE_NOT_FOUND`. Never renumbered, never reworded. */
  abstract readonly code: string;
  abstract readonly category: ErrorCategory;
  /** Structured details safe to show to the caller (sent as gRPC metadata / trailers). */
  readonly details: Readonly<Record<string, unknown>>;

  constructor(message: string, details: Record<string, unknown> = {}, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.details = details;
  }
}

/** Thrown when a request or a document fails validation; `violations` lists each problem by path. */
export class ValidationError extends AppError {
  readonly code: string;
  readonly category = ErrorCategory.InvalidArgument;
  readonly violations: readonly Violation[];
  constructor(message: string, violations: readonly Violation[] = [], code = 'VALIDATION_FAILED') {
    super(message, { violations });
    this.code = code;
    this.violations = violations;
  }
}

/** One problem found while validating input: where it is and what is wrong. */
export interface Violation {
  /** JSON-pointer-like path (`/steps/2/retry/base_ms`) or a step name. */
  readonly path: string;
  readonly message: string;
}

/** Thrown when a named thing (template, task, step, session) does not exist. */
export class NotFoundError extends AppError {
  readonly category = ErrorCategory.NotFound;
  readonly code: string;
  constructor(kind: string, id: string, code = `${kind.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}_NOT_FOUND`) {
    super(`${kind} ${id} not found`, { kind, id });
    this.code = code;
  }
}

/** Thrown when creating something that already exists with a different body or identity. */
export class AlreadyExistsError extends AppError {
  readonly category = ErrorCategory.AlreadyExists;
  readonly code: string;
  constructor(message: string, code: string, details: Record<string, unknown> = {}) {
    super(message, details);
    this.code = code;
  }
}

/** Thrown when an operation makes no sense from the current state (e.g. retrying a complete step). */
export class FailedPreconditionError extends AppError {
  readonly category = ErrorCategory.FailedPrecondition;
  readonly code: string;
  constructor(message: string, code: string, details: Record<string, unknown> = {}) {
    super(message, details);
    this.code = code;
  }
}

/** Thrown when a request carries no credentials, or credentials that are not valid. */
export class UnauthenticatedError extends AppError {
  readonly category = ErrorCategory.Unauthenticated;
  readonly code = 'UNAUTHENTICATED';
}

/** Thrown when valid credentials lack the role or namespace an operation needs. */
export class PermissionDeniedError extends AppError {
  readonly category = ErrorCategory.PermissionDenied;
  readonly code = 'PERMISSION_DENIED';
}

/** Thrown when a request exceeds a configured limit (payload size, batch size, credit). */
export class ResourceExhaustedError extends AppError {
  readonly category = ErrorCategory.ResourceExhausted;
  readonly code: string;
  constructor(message: string, code: string, details: Record<string, unknown> = {}) {
    super(message, details);
    this.code = code;
  }
}

/** Thrown when the server is shutting down or a dependency is temporarily unreachable. */
export class UnavailableError extends AppError {
  readonly category = ErrorCategory.Unavailable;
  readonly code: string;
  constructor(message: string, code = 'UNAVAILABLE', details: Record<string, unknown> = {}) {
    super(message, details);
    this.code = code;
  }
}

/** Thrown when a position (an event cursor) lies outside what the server still holds. */
export class OutOfRangeError extends AppError {
  readonly category = ErrorCategory.OutOfRange;
  readonly code: string;
  constructor(message: string, code: string, details: Record<string, unknown> = {}) {
    super(message, details);
    this.code = code;
  }
}

/** Thrown at start-up when configuration is invalid; the CLI prints it without a stack trace. */
export class ConfigError extends AppError {
  readonly category = ErrorCategory.InvalidArgument;
  readonly code = 'CONFIG_INVALID';
}
