/**
 * The one place transient database failures are retried (CONVENTIONS "Errors").
 * A transient failure is one where running the same work again can succeed:
 * serialization failures, deadlocks, a server that is starting or shutting down,
 * and lost connections. Everything else is rethrown at once.
 *
 * Retried work must be safe to repeat: if a connection drops during COMMIT the
 * outcome is unknown, so the work should be a compare-and-swap or otherwise idempotent.
 */
import type { Logger } from 'pino';

/** SQLSTATEs that mean "try again". Class 08 (connection exception) is matched as a class. */
const TRANSIENT_SQLSTATES = new Set([
  '40001', // serialization_failure
  '40P01', // deadlock_detected
  '57P01', // admin_shutdown: the server ended this connection
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: the server is starting up
]);

/** Socket-level error codes that mean the connection was lost or never made. */
const TRANSIENT_NODE_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE']);

const TRANSIENT_MESSAGES = [/Connection terminated/i, /Client has encountered a connection error/i];

/**
 * True when `err` (or an error in its `cause` chain) is a transient database failure:
 * SQLSTATE 40001, 40P01, 57P01-57P03 or class 08; socket errors ECONNRESET, ECONNREFUSED,
 * ETIMEDOUT, EPIPE; node-postgres' "Connection terminated ..." messages.
 */
export function isTransientDatabaseError(err: unknown): boolean {
  for (let current = err, depth = 0; current && typeof current === 'object' && depth < 5; depth++) {
    const { code, message, cause } = current as { code?: unknown; message?: unknown; cause?: unknown };
    if (typeof code === 'string') {
      if (TRANSIENT_SQLSTATES.has(code) || /^08[0-9A-Z]{3}$/.test(code) || TRANSIENT_NODE_CODES.has(code)) return true;
    }
    if (typeof message === 'string' && TRANSIENT_MESSAGES.some((re) => re.test(message))) return true;
    current = cause;
  }
  return false;
}

/** Options of {@link withTransientRetry}. */
export interface TransientRetryOptions {
  /** Retries after the first attempt. Default 5. */
  retries?: number;
  /** Delay ceiling before the first retry; doubles per retry. Default 25 ms. */
  baseMs?: number;
  /** Upper bound of any delay. Default 2000 ms. */
  maxMs?: number;
  logger?: Logger;
  /** Called before each retry's wait, with the failure, the retry number (1-based) and the wait. */
  onRetry?: (err: unknown, retry: number, delayMs: number) => void;
  /** Source of jitter in [0, 1). Default Math.random. */
  random?: () => number;
  /** How to wait. Default setTimeout. */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Delay before retry number `retry` (1-based): exponential ceiling
 * `min(maxMs, baseMs * 2^(retry-1))`, jittered uniformly into its upper half so that
 * colliding transactions spread out without ever retrying immediately.
 */
export function transientBackoffMs(retry: number, baseMs: number, maxMs: number, random: () => number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, retry - 1));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}

const defaultSleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Runs `fn`, running it again after a jittered exponential wait while it fails with a
 * transient database error ({@link isTransientDatabaseError}), at most `retries` times.
 * The last failure, or the first non-transient one, is rethrown unchanged.
 */
export async function withTransientRetry<T>(fn: () => Promise<T>, opts: TransientRetryOptions = {}): Promise<T> {
  const retries = opts.retries ?? 5;
  const baseMs = opts.baseMs ?? 25;
  const maxMs = opts.maxMs ?? 2000;
  const random = opts.random ?? Math.random;
  const sleep = opts.sleep ?? defaultSleep;
  for (let retry = 0; ; retry++) {
    try {
      return await fn();
    } catch (err) {
      if (retry >= retries || !isTransientDatabaseError(err)) throw err;
      const delayMs = transientBackoffMs(retry + 1, baseMs, maxMs, random);
      opts.logger?.warn({ err, retry: retry + 1, delayMs }, 'transient database error; retrying');
      opts.onRetry?.(err, retry + 1, delayMs);
      await sleep(delayMs);
    }
  }
}
