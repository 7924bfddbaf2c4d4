/** gRPC plumbing shared by the client and the worker: channels, auth metadata, calls as promises. */
import * as grpc from '@grpc/grpc-js';
import { fromGrpcError } from '../errors.js';

/** Where and how to connect. */
export interface ConnectionOptions {
  /** `host:port` of the Tasker server. */
  readonly address: string;
  /** Bearer token, sent as `authorization: Bearer <token>`; omit when the server runs with auth disabled. */
  readonly token?: string;
  /** TLS: `grpc.credentials.createSsl(rootCert, key, certChain)`; default plaintext. */
  readonly credentials?: grpc.ChannelCredentials;
  /** Extra grpc-js channel options. */
  readonly channelOptions?: grpc.ChannelOptions;
}

/** The channel credentials of `options`: its TLS credentials, else plaintext. */
export function channelCredentials(options: ConnectionOptions): grpc.ChannelCredentials {
  return options.credentials ?? grpc.credentials.createInsecure();
}

/** A channel for `options`, shared by every service client built on it (`channelOverride`). */
export function openChannel(options: ConnectionOptions): grpc.Channel {
  return new grpc.Channel(options.address, channelCredentials(options), options.channelOptions ?? {});
}

/** Metadata carrying the bearer token (empty without one). */
export function authMetadata(token: string | undefined): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (token) metadata.set('authorization', `Bearer ${token}`);
  return metadata;
}

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: Partial<grpc.CallOptions>,
  callback: (error: grpc.ServiceError | null, response: Res) => void,
) => grpc.ClientUnaryCall;

/** Calls a unary method; failures reject with the matching TaskerError. */
export function callUnary<Req, Res>(method: UnaryMethod<Req, Res>, request: Req, metadata: grpc.Metadata, timeoutMs: number | null): Promise<Res> {
  const options: Partial<grpc.CallOptions> = timeoutMs ? { deadline: new Date(Date.now() + timeoutMs) } : {};
  return new Promise((resolve, reject) => {
    method(request, metadata.clone(), options, (error, response) => {
      if (error) reject(fromGrpcError(error));
      else resolve(response);
    });
  });
}

/**
 * A server stream as an async generator of converted items. Breaking out of a
 * `for await` (or calling `return()`) cancels the call, and so does `signal`, after
 * which the generator ends quietly; server errors are thrown as TaskerErrors. Items
 * for which `convert` returns null are skipped.
 */
export async function* streamItems<M, T>(
  open: () => grpc.ClientReadableStream<M>,
  convert: (message: M) => T | null,
  signal?: AbortSignal,
): AsyncGenerator<T, void, undefined> {
  if (signal?.aborted) return;
  const call = open();
  let done = false;
  let cancelled = false;
  const cancel = (): void => {
    if (done || cancelled) return;
    cancelled = true;
    // Cancelling makes grpc-js emit 'error' (CANCELLED) even when nobody listens any more.
    call.on('error', () => undefined);
    call.cancel();
  };
  signal?.addEventListener('abort', cancel, { once: true });
  try {
    for await (const message of call as AsyncIterable<M>) {
      const item = convert(message);
      if (item !== null) yield item;
    }
    done = true;
  } catch (err) {
    done = true;
    if (cancelled) return;
    throw fromGrpcError(err);
  } finally {
    signal?.removeEventListener('abort', cancel);
    cancel(); // the consumer stopped early: end the call
  }
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
