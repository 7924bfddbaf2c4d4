/**
 * Wrappers that keep service implementations thin. Each one authenticates the call,
 * checks the role the method needs, gives the implementation a context (principal,
 * a logger carrying the correlation id, an abort signal), logs the call at debug
 * level, and turns whatever the implementation throws into a status via `errors.ts`.
 *
 * Streams end cleanly: the context's `signal` aborts when the client cancels or the
 * server begins shutting down, and a pending `write` then rejects with the signal's
 * reason (an `UnavailableError` SERVER_SHUTTING_DOWN at shutdown, so the client sees
 * UNAVAILABLE and reconnects elsewhere).
 */
import { randomUUID } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Role } from '../config/schema.js';
import { UnavailableError } from '../domain/errors.js';
import type { Authenticator, Principal } from './auth.js';
import { requireRole } from './auth.js';
import { ERROR_CODE_KEY, toServiceError } from './errors.js';

/** Metadata key a caller may set to correlate its logs with ours; generated when absent. */
export const CORRELATION_ID_KEY = 'x-correlation-id';

/** What every wrapped implementation receives besides the request. */
export interface CallContext {
  readonly principal: Principal;
  /** Child logger with `correlationId` and `method`. */
  readonly logger: Logger;
  readonly metadata: grpc.Metadata;
  readonly correlationId: string;
  /** Aborts when the client cancels the call or the server starts shutting down. */
  readonly signal: AbortSignal;
  /** Throws PermissionDenied unless the caller holds this method's role in `namespace`. */
  authorize(namespace: string): void;
}

/** Context of a unary call. */
export interface UnaryContext<Req, Res> extends CallContext {
  readonly call: grpc.ServerUnaryCall<Req, Res>;
}

/** Context of a server-streaming call; `write` waits while the client is slow. */
export interface ServerStreamContext<Req, Res> extends CallContext {
  readonly call: grpc.ServerWritableStream<Req, Res>;
  write(message: Res): Promise<void>;
}

/** Context of a bidirectional call; read requests with `for await (const m of call)`. */
export interface BidiStreamContext<Req, Res> extends CallContext {
  readonly call: grpc.ServerDuplexStream<Req, Res>;
  write(message: Res): Promise<void>;
}

/** The wrappers, bound to one server's authenticator, logger and shutdown signal. */
export interface RpcHandlers {
  unary<Req, Res>(role: Role, fn: (request: Req, ctx: UnaryContext<Req, Res>) => Promise<Res>): grpc.handleUnaryCall<Req, Res>;
  serverStream<Req, Res>(
    role: Role,
    fn: (request: Req, ctx: ServerStreamContext<Req, Res>) => Promise<void>,
  ): grpc.handleServerStreamingCall<Req, Res>;
  bidiStream<Req, Res>(
    role: Role,
    fn: (call: grpc.ServerDuplexStream<Req, Res>, ctx: BidiStreamContext<Req, Res>) => Promise<void>,
  ): grpc.handleBidiStreamingCall<Req, Res>;
}

/** Dependencies of {@link createRpcHandlers}. */
export interface RpcHandlerDeps {
  authenticator: Authenticator;
  logger: Logger;
  /** Aborted when the server begins shutting down; streams then wind down. */
  shutdownSignal: AbortSignal;
}

/** Thrown into a waiting `write` when the client cancelled the call. */
class CallCancelledError extends Error {
  constructor() {
    super('call cancelled by the client');
    this.name = 'CallCancelledError';
  }
}

type AnyCall = grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown> | grpc.ServerDuplexStream<unknown, unknown>;
type WritableCall<Res> = grpc.ServerWritableStream<unknown, Res> | grpc.ServerDuplexStream<unknown, Res>;

function correlationIdOf(metadata: grpc.Metadata): string {
  const value = metadata.get(CORRELATION_ID_KEY)[0];
  const text = typeof value === 'string' ? value.trim() : '';
  return /^[\w.:/-]{1,128}$/.test(text) ? text : randomUUID();
}

function writer<Res>(call: WritableCall<Res>, signal: AbortSignal): (message: Res) => Promise<void> {
  return (message) =>
    new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(signal.reason);
      if (call.write(message)) return resolve();
      const onDrain = () => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      const onAbort = () => {
        call.off('drain', onDrain);
        reject(signal.reason);
      };
      call.once('drain', onDrain);
      signal.addEventListener('abort', onAbort, { once: true });
    });
}

/** Builds the wrappers. One instance per server; services receive it at construction. */
export function createRpcHandlers(deps: RpcHandlerDeps): RpcHandlers {
  const shutdownReason = () => new UnavailableError('server is shutting down', 'SERVER_SHUTTING_DOWN');

  /** Authenticates and builds the context; the abort listeners are removed by `done`. */
  function begin(role: Role, call: AnyCall) {
    const started = performance.now();
    const correlationId = correlationIdOf(call.metadata);
    const method = call.getPath();
    let logger = deps.logger.child({ correlationId, method });
    const cancel = new AbortController();
    const onCancelled = () => cancel.abort(new CallCancelledError());
    const emitter: EventEmitter = call;
    emitter.on('cancelled', onCancelled);
    const onShutdown = () => cancel.abort(shutdownReason());
    if (deps.shutdownSignal.aborted) onShutdown();
    else deps.shutdownSignal.addEventListener('abort', onShutdown, { once: true });
    const done = () => {
      emitter.off('cancelled', onCancelled);
      deps.shutdownSignal.removeEventListener('abort', onShutdown);
    };
    const elapsed = () => Math.round(performance.now() - started);
    const fail = (err: unknown): grpc.ServiceError => {
      done();
      const status = toServiceError(err, logger);
      logger.debug({ code: status.code, reason: status.metadata.get(ERROR_CODE_KEY)[0], ms: elapsed() }, 'rpc failed');
      return status;
    };
    let principal: Principal;
    try {
      if (cancel.signal.aborted) throw cancel.signal.reason;
      principal = deps.authenticator.authenticate(call.metadata);
      requireRole(principal, role);
    } catch (err) {
      return { ok: false as const, error: fail(err) };
    }
    logger = logger.child({ principal: principal.name });
    logger.debug('rpc started');
    const ctx: CallContext = {
      principal,
      logger,
      metadata: call.metadata,
      correlationId,
      signal: cancel.signal,
      authorize: (namespace) => requireRole(principal, role, namespace),
    };
    const finish = () => {
      done();
      logger.debug({ ms: elapsed() }, 'rpc finished');
    };
    return { ok: true as const, ctx, finish, fail, cancelled: () => call.cancelled };
  }

  return {
    unary<Req, Res>(role: Role, fn: (request: Req, ctx: UnaryContext<Req, Res>) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
      return (call, callback) => {
        const started = begin(role, call as AnyCall);
        if (!started.ok) return callback(started.error);
        fn(call.request, { ...started.ctx, call }).then(
          (response) => {
            started.finish();
            callback(null, response);
          },
          (err: unknown) => callback(started.fail(err)),
        );
      };
    },

    serverStream<Req, Res>(
      role: Role,
      fn: (request: Req, ctx: ServerStreamContext<Req, Res>) => Promise<void>,
    ): grpc.handleServerStreamingCall<Req, Res> {
      return (call) => {
        const started = begin(role, call as AnyCall);
        if (!started.ok) return void call.emit('error', started.error);
        const write = writer<Res>(call as WritableCall<Res>, started.ctx.signal);
        runStream(fn(call.request, { ...started.ctx, call, write }), call as WritableCall<Res>, started);
      };
    },

    bidiStream<Req, Res>(
      role: Role,
      fn: (call: grpc.ServerDuplexStream<Req, Res>, ctx: BidiStreamContext<Req, Res>) => Promise<void>,
    ): grpc.handleBidiStreamingCall<Req, Res> {
      return (call) => {
        const started = begin(role, call as AnyCall);
        if (!started.ok) return void call.emit('error', started.error);
        const write = writer<Res>(call as WritableCall<Res>, started.ctx.signal);
        runStream(fn(call, { ...started.ctx, call, write }), call as WritableCall<Res>, started);
      };
    },
  };
}

interface Started {
  finish(): void;
  fail(err: unknown): grpc.ServiceError;
  cancelled(): boolean;
}

/** Ends a stream when its implementation settles: OK on success, the mapped status on failure. */
function runStream(work: Promise<void>, call: WritableCall<unknown>, started: Started): void {
  work.then(
    () => {
      started.finish();
      if (!call.writableEnded) call.end();
    },
    (err: unknown) => {
      if (started.cancelled() || err instanceof CallCancelledError) {
        started.finish();
        return;
      }
      const status = started.fail(err);
      if (!call.writableEnded) call.emit('error', status);
    },
  );
}
