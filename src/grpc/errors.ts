/**
 * The one place errors become gRPC statuses. An `AppError` keeps its message and
 * travels with its stable reason (`tasker-error-code`) and its safe details
 * (`tasker-error-details-bin`, UTF-8 JSON) in trailing metadata. Anything else is a
 * bug or an outage: it is logged with `{ err }` and the caller sees only INTERNAL
 * "internal error".
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { AppError, ErrorCategory } from '../domain/errors.js';

/** Trailing metadata key carrying the AppError `code`. */
export const ERROR_CODE_KEY = 'tasker-error-code';
/** Trailing metadata key carrying the AppError `details` as UTF-8 JSON. */
export const ERROR_DETAILS_KEY = 'tasker-error-details-bin';

/** gRPC status of each error category. */
export const STATUS_OF_CATEGORY: Readonly<Record<ErrorCategory, grpc.status>> = {
  [ErrorCategory.InvalidArgument]: grpc.status.INVALID_ARGUMENT,
  [ErrorCategory.NotFound]: grpc.status.NOT_FOUND,
  [ErrorCategory.AlreadyExists]: grpc.status.ALREADY_EXISTS,
  [ErrorCategory.FailedPrecondition]: grpc.status.FAILED_PRECONDITION,
  [ErrorCategory.Unauthenticated]: grpc.status.UNAUTHENTICATED,
  [ErrorCategory.PermissionDenied]: grpc.status.PERMISSION_DENIED,
  [ErrorCategory.ResourceExhausted]: grpc.status.RESOURCE_EXHAUSTED,
  [ErrorCategory.Unavailable]: grpc.status.UNAVAILABLE,
  [ErrorCategory.OutOfRange]: grpc.status.OUT_OF_RANGE,
};

/** A status ready to hand to grpc-js: a callback's error, or `call.emit('error', …)` on a stream. */
export interface TaskerServiceError extends Error {
  code: grpc.status;
  details: string;
  metadata: grpc.Metadata;
}

function serviceError(code: grpc.status, details: string, metadata: grpc.Metadata): TaskerServiceError {
  return Object.assign(new Error(details), { code, details, metadata });
}

function detailsJson(details: Readonly<Record<string, unknown>>): Buffer {
  try {
    return Buffer.from(JSON.stringify(details), 'utf8');
  } catch {
    // Details are meant to be plain data; a cycle or a BigInt must not turn a clear error into INTERNAL.
    return Buffer.from('{}', 'utf8');
  }
}

/**
 * Maps any thrown value to the status the caller receives. AppErrors map by
 * category with their code and details in trailing metadata; everything else is
 * logged (error level, with the stack) and becomes INTERNAL "internal error".
 */
export function toServiceError(err: unknown, logger: Logger): TaskerServiceError {
  const metadata = new grpc.Metadata();
  if (err instanceof AppError) {
    metadata.set(ERROR_CODE_KEY, err.code);
    metadata.set(ERROR_DETAILS_KEY, detailsJson(err.details));
    return serviceError(STATUS_OF_CATEGORY[err.category], err.message, metadata);
  }
  logger.error({ err }, 'internal error while handling a call');
  return serviceError(grpc.status.INTERNAL, 'internal error', metadata);
}
