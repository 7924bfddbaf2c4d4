/**
 * Node SDK error mapping, both ways: a refused call (status + `tasker-error-code` +
 * `tasker-error-details-bin` trailers, as the server's own error mapping builds them)
 * becomes the matching TaskerError subclass; what a handler throws becomes the
 * StepError the worker reports.
 */
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { NotFoundError as ServerNotFound, ValidationError as ServerValidation } from '../../src/domain/errors.js';
import { toServiceError } from '../../src/grpc/errors.js';
import {
  AlreadyExistsError,
  CancelledError,
  ERROR_CODE_KEY,
  ERROR_DETAILS_KEY,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermanentError,
  PermissionDeniedError,
  ResourceExhaustedError,
  RetryableError,
  TaskerError,
  UnauthenticatedError,
  UnavailableError,
  fromGrpcError,
  stepErrorFrom,
} from '../../clients/node/src/index.js';
import { SDK_VERSION } from '../../clients/node/src/version.js';
import packageJson from '../../clients/node/package.json' with { type: 'json' };

/** A ServiceError as grpc-js hands it to a failed call's callback. */
function serviceError(code: grpc.status, details: string, reason?: string, extra?: unknown): grpc.ServiceError {
  const metadata = new grpc.Metadata();
  if (reason) metadata.set(ERROR_CODE_KEY, reason);
  if (extra !== undefined) metadata.set(ERROR_DETAILS_KEY, Buffer.from(JSON.stringify(extra), 'utf8'));
  return Object.assign(new Error(`${code} ${grpc.status[code]}: ${details}`), { code, details, metadata });
}

describe('fromGrpcError', () => {
  it.each([
    [grpc.status.INVALID_ARGUMENT, InvalidArgumentError, 'TEMPLATE_INVALID'],
    [grpc.status.NOT_FOUND, NotFoundError, 'TASK_NOT_FOUND'],
    [grpc.status.ALREADY_EXISTS, AlreadyExistsError, 'TEMPLATE_CONFLICT'],
    [grpc.status.FAILED_PRECONDITION, FailedPreconditionError, 'SESSION_EXPIRED'],
    [grpc.status.UNAUTHENTICATED, UnauthenticatedError, 'UNAUTHENTICATED'],
    [grpc.status.PERMISSION_DENIED, PermissionDeniedError, 'PERMISSION_DENIED'],
    [grpc.status.RESOURCE_EXHAUSTED, ResourceExhaustedError, 'TOO_MANY'],
    [grpc.status.UNAVAILABLE, UnavailableError, 'SERVER_SHUTTING_DOWN'],
  ])('status %i becomes %o with its reason and details', (code, Class, reason) => {
    const err = fromGrpcError(serviceError(code, 'what went wrong', reason, { kind: 'task', id: 't-1' }));
    expect(err).toBeInstanceOf(Class);
    expect(err).toBeInstanceOf(TaskerError);
    expect(err).toMatchObject({ code: reason, grpcCode: code, message: 'what went wrong', details: { kind: 'task', id: 't-1' }, name: Class.name });
  });

  it('reads violations from the details of INVALID_ARGUMENT', () => {
    const violations = [{ path: '/steps/1/depends_on/0', message: 'unknown step "b"' }];
    const err = fromGrpcError(serviceError(grpc.status.INVALID_ARGUMENT, 'template is invalid', 'TEMPLATE_INVALID', { violations }));
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).violations).toEqual(violations);
  });

  it('maps what the server itself sends back to the same reason and details', () => {
    const silent = pino({ level: 'silent' });
    const invalid = fromGrpcError(toServiceError(new ServerValidation('context is invalid', [{ path: '/amount', message: 'must be > 0' }], 'CONTEXT_INVALID'), silent));
    expect(invalid).toBeInstanceOf(InvalidArgumentError);
    expect(invalid.code).toBe('CONTEXT_INVALID');
    expect((invalid as InvalidArgumentError).violations).toEqual([{ path: '/amount', message: 'must be > 0' }]);
    const missing = fromGrpcError(toServiceError(new ServerNotFound('task', 'nope'), silent));
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(missing.code).toBe('TASK_NOT_FOUND');
    const internal = fromGrpcError(toServiceError(new Error('secret detail'), silent));
    expect(internal).toMatchObject({ code: 'INTERNAL', grpcCode: grpc.status.INTERNAL, details: {} });
    expect(internal.constructor).toBe(TaskerError);
  });

  it('falls back to the status name, tolerates bad details, and wraps non-gRPC errors', () => {
    expect(fromGrpcError(serviceError(grpc.status.DEADLINE_EXCEEDED, 'too slow'))).toMatchObject({ code: 'DEADLINE_EXCEEDED', details: {} });
    const garbled = serviceError(grpc.status.NOT_FOUND, 'x', 'STEP_NOT_FOUND');
    garbled.metadata.set(ERROR_DETAILS_KEY, Buffer.from('{not json'));
    expect(fromGrpcError(garbled).details).toEqual({});
    const plain = fromGrpcError(new Error('socket hang up'));
    expect(plain).toMatchObject({ code: 'UNKNOWN', message: 'socket hang up' });
    const same = new NotFoundError('x', { code: 'TASK_NOT_FOUND' });
    expect(fromGrpcError(same)).toBe(same);
    expect(fromGrpcError({ code: grpc.status.OUT_OF_RANGE, details: 'cursor too old', metadata: new grpc.Metadata() })).toMatchObject({ code: 'OUT_OF_RANGE' });
  });
});

describe('stepErrorFrom (what a handler throws → StepFailed)', () => {
  it('reports an ordinary exception as retryable with its class, message and stack, innermost frame first', () => {
    function innermost(): never {
      throw new TypeError('boom');
    }
    let thrown: unknown;
    try {
      innermost();
    } catch (err) {
      thrown = err;
    }
    const error = stepErrorFrom(thrown);
    expect(error).toMatchObject({ errorClass: 'TypeError', message: 'boom', retryable: true, code: '' });
    expect(error.retryAfterMs).toBeUndefined();
    expect(error.backtrace[0]).toMatch(/^at innermost /);
    expect(error.backtrace.every((l) => l.startsWith('at '))).toBe(true);
  });

  it('reports PermanentError as not retryable, with its code and details', () => {
    const error = stepErrorFrom(new PermanentError('card declined', { code: 'CARD_DECLINED', details: { last4: '4242' } }));
    expect(error).toMatchObject({ errorClass: 'PermanentError', message: 'card declined', retryable: false, code: 'CARD_DECLINED' });
    expect(JSON.parse(error.detailsJson.toString())).toEqual({ last4: '4242' });
  });

  it('reports RetryableError with its retry-after, and subclasses by their own name', () => {
    class RateLimited extends RetryableError {}
    expect(stepErrorFrom(new RetryableError('later', { retryAfterMs: 1500 }))).toMatchObject({ errorClass: 'RetryableError', retryable: true, retryAfterMs: 1500 });
    expect(stepErrorFrom(new RateLimited('slow down', { code: 'RATE_LIMITED' }))).toMatchObject({ errorClass: 'RateLimited', code: 'RATE_LIMITED' });
    expect(stepErrorFrom(new RetryableError('now', { retryAfterMs: 0 })).retryAfterMs).toBe(0);
    expect(() => new RetryableError('x', { retryAfterMs: -1 })).toThrow(RangeError);
  });

  it('reports an aborted handler and non-Error throws as retryable failures', () => {
    expect(stepErrorFrom(new CancelledError('deadline', 'deadline passed'))).toMatchObject({ errorClass: 'CancelledError', retryable: true, code: 'STEP_DEADLINE' });
    expect(stepErrorFrom('nope')).toMatchObject({ errorClass: 'string', retryable: true, message: 'a non-Error value was thrown: nope' });
    expect(stepErrorFrom({ reason: 1 })).toMatchObject({ errorClass: 'Object', message: 'a non-Error value was thrown: {"reason":1}' });
  });
});

it('announces the package version', () => {
  expect(SDK_VERSION).toBe(packageJson.version);
});
