/**
 * The single mapping from errors to gRPC statuses: every AppError category has its
 * status code, reason and details in trailers; anything else is INTERNAL with
 * nothing of the original error shown, and is logged.
 */
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { AppError } from '../../src/domain/errors.js';
import {
  AlreadyExistsError,
  ConfigError,
  FailedPreconditionError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  UnauthenticatedError,
  UnavailableError,
  ValidationError,
} from '../../src/domain/errors.js';
import { ERROR_CODE_KEY, ERROR_DETAILS_KEY, toServiceError } from '../../src/grpc/errors.js';

function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

const cases: Array<[string, AppError, grpc.status, string, Record<string, unknown>]> = [
  [
    'invalid_argument',
    new ValidationError('template is invalid', [{ path: '/steps/1/depends_on/0', message: 'unknown step "b"' }]),
    grpc.status.INVALID_ARGUMENT,
    'VALIDATION_FAILED',
    { violations: [{ path: '/steps/1/depends_on/0', message: 'unknown step "b"' }] },
  ],
  ['not_found', new NotFoundError('task', 'tsk_1'), grpc.status.NOT_FOUND, 'TASK_NOT_FOUND', { kind: 'task', id: 'tsk_1' }],
  [
    'already_exists',
    new AlreadyExistsError('template exists with another body', 'TEMPLATE_CONFLICT', { name: 'a/b@1' }),
    grpc.status.ALREADY_EXISTS,
    'TEMPLATE_CONFLICT',
    { name: 'a/b@1' },
  ],
  [
    'failed_precondition',
    new FailedPreconditionError('step is complete', 'STEP_NOT_RETRYABLE', { state: 'complete' }),
    grpc.status.FAILED_PRECONDITION,
    'STEP_NOT_RETRYABLE',
    { state: 'complete' },
  ],
  ['unauthenticated', new UnauthenticatedError('invalid bearer token'), grpc.status.UNAUTHENTICATED, 'UNAUTHENTICATED', {}],
  [
    'permission_denied',
    new PermissionDeniedError('lacks the admin role', { role: 'admin' }),
    grpc.status.PERMISSION_DENIED,
    'PERMISSION_DENIED',
    { role: 'admin' },
  ],
  [
    'resource_exhausted',
    new ResourceExhaustedError('report too large', 'REPORT_TOO_LARGE', { limit: 1024 }),
    grpc.status.RESOURCE_EXHAUSTED,
    'REPORT_TOO_LARGE',
    { limit: 1024 },
  ],
  ['unavailable', new UnavailableError('server is shutting down', 'SERVER_SHUTTING_DOWN'), grpc.status.UNAVAILABLE, 'SERVER_SHUTTING_DOWN', {}],
  ['invalid_argument (config)', new ConfigError('bad config', { problems: ['x'] }), grpc.status.INVALID_ARGUMENT, 'CONFIG_INVALID', { problems: ['x'] }],
];

describe('toServiceError', () => {
  it.each(cases)('maps %s to its status with reason and details in trailers', (_name, error, code, reason, details) => {
    const { logger, lines } = capturingLogger();
    const status = toServiceError(error, logger);
    expect(status.code).toBe(code);
    expect(status.details).toBe(error.message);
    expect(status.message).toBe(error.message);
    expect(status.metadata.get(ERROR_CODE_KEY)).toEqual([reason]);
    const [bin] = status.metadata.get(ERROR_DETAILS_KEY);
    expect(Buffer.isBuffer(bin)).toBe(true);
    expect(JSON.parse((bin as Buffer).toString('utf8'))).toEqual(details);
    expect(lines).toEqual([]);
  });

  it('turns any other error into INTERNAL "internal error", logs it, and shows nothing of it', () => {
    const { logger, lines } = capturingLogger();
    const secret = new Error('connection to postgres://admin:pw@10.0.0.5 failed at row 42');
    const status = toServiceError(secret, logger);
    expect(status.code).toBe(grpc.status.INTERNAL);
    expect(status.details).toBe('internal error');
    expect(status.metadata.getMap()).toEqual({});
    expect(JSON.stringify(status)).not.toContain('postgres');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 50, err: { message: secret.message } });
  });

  it('treats thrown non-errors as internal too', () => {
    const { logger, lines } = capturingLogger();
    const status = toServiceError('boom', logger);
    expect(status.code).toBe(grpc.status.INTERNAL);
    expect(status.details).toBe('internal error');
    expect(lines).toHaveLength(1);
  });
});
