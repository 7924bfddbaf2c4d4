/**
 * Node conformance worker (see clients/conformance/README.md).
 *
 * Run from the repository root:
 *
 *     npx tsx clients/node/conformance/worker.ts
 *
 * Configured only by environment variables (TASKER_ADDRESS, TASKER_TOKEN,
 * TASKER_WORKER_NAME, TASKER_HANDLER_PREFIX, TASKER_CONCURRENCY; TASKER_LOG_LEVEL for
 * stderr verbosity). Writes one JSON object per line on stdout for each observable
 * event; logs go to stderr. Exits 0 after a graceful stop on SIGTERM.
 */
import { PermanentError, RetryableError, Worker } from '../src/index.js';
import type { LogFn, Logger, Step, StepContext } from '../src/index.js';

const LANGUAGE = 'node';
const WAIT_FOR_CANCEL_MS = 30_000;
const LEVELS = ['debug', 'info', 'warn', 'error'] as const;

/** Writes one event line on stdout (the only thing that goes there). */
function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

/** JSON log lines on stderr at or above `level`. */
function stderrLogger(level: string): Logger {
  const min = Math.max(0, LEVELS.indexOf(level as (typeof LEVELS)[number]));
  const at =
    (name: (typeof LEVELS)[number]): LogFn =>
    (fields, message) => {
      if (LEVELS.indexOf(name) >= min) process.stderr.write(`${JSON.stringify({ level: name, time: new Date().toISOString(), msg: message, ...fields })}\n`);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** Resolves after `ms`, or when `signal` aborts; returns whether it aborted. */
function waitAborted(signal: AbortSignal, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(true);
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(false);
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Counts running `concurrency` handlers; each sees the highest count reached while it ran. */
class ConcurrencyProbe {
  readonly #running = new Set<{ peak: number }>();

  enter(): { peak: number } {
    const cell = { peak: 0 };
    this.#running.add(cell);
    for (const other of this.#running) other.peak = Math.max(other.peak, this.#running.size);
    return cell;
  }

  leave(cell: { peak: number }): number {
    this.#running.delete(cell);
    return cell.peak;
  }
}

function numberOf(value: unknown, fallback = 0): number {
  const n = typeof value === 'number' ? value : Number(value);
  return Number.isFinite(n) ? n : fallback;
}

/** The worker with the conformance handler catalog registered under the prefix. */
function buildWorker(env: NodeJS.ProcessEnv): Worker {
  const prefix = env.TASKER_HANDLER_PREFIX || `conformance.${LANGUAGE}`;
  const worker = new Worker({
    address: env.TASKER_ADDRESS || '127.0.0.1:50051',
    token: env.TASKER_TOKEN || undefined,
    name: env.TASKER_WORKER_NAME || `conformance-${LANGUAGE}`,
    concurrency: Math.max(1, Math.floor(numberOf(env.TASKER_CONCURRENCY, 4))),
    labels: { suite: 'conformance', language: LANGUAGE },
    logger: stderrLogger(env.TASKER_LOG_LEVEL?.toLowerCase() || 'info'),
  });
  const probe = new ConcurrencyProbe();
  let readySent = false;
  worker.on('ready', (info) => {
    if (readySent) return;
    readySent = true;
    emit({ event: 'ready', session_id: info.sessionId });
  });
  worker.on('resumed', (info) => emit({ event: 'resumed', session_id: info.sessionId, in_flight: info.inFlight.length }));
  const handle = (name: string, fn: (step: Step, ctx: StepContext) => unknown): void => void worker.handle(`${prefix}.${name}`, fn);

  handle('echo', (step) => {
    const ancestors = step.ancestorResults;
    let total = 0;
    for (const result of Object.values(ancestors)) {
      const value = result && typeof result === 'object' ? (result as Record<string, unknown>).value : undefined;
      if (typeof value === 'number') total += value;
    }
    return { step: step.name, language: LANGUAGE, attempt: step.attempt, ancestors: Object.keys(ancestors).sort(), value: 1 + total };
  });

  handle('flaky', (step) => {
    const cfg = step.handlerConfig;
    if (step.attempt <= numberOf(cfg.fail_times)) {
      const after = cfg.retry_after_ms;
      throw new RetryableError(`flaky failure on attempt ${step.attempt}`, after === undefined || after === null ? {} : { retryAfterMs: numberOf(after) });
    }
    return { attempt: step.attempt };
  });

  handle('permanent', () => {
    throw new PermanentError('permanent failure requested', { code: 'CONFORMANCE_PERMANENT' });
  });

  handle('raise', () => {
    throw new TypeError('boom');
  });

  handle('progress', async (step, ctx) => {
    const count = numberOf(step.handlerConfig.count);
    for (let i = 1; i <= count; i++) await ctx.progress({ i });
    return { count };
  });

  handle('wait_for_cancel', async (step, ctx) => {
    await ctx.progress({ waiting: true });
    const cancelled = await waitAborted(ctx.signal, WAIT_FOR_CANCEL_MS);
    if (cancelled) emit({ event: 'cancelled', step_id: step.id });
    return { cancelled };
  });

  handle('concurrency', async (step, ctx) => {
    const cell = probe.enter();
    try {
      await waitAborted(ctx.signal, numberOf(step.handlerConfig.sleep_ms));
    } finally {
      probe.leave(cell);
    }
    return { peak: cell.peak };
  });

  handle('interrupt', async (step) => {
    if (step.attempt !== 1) return { resumed: false };
    const resumed = new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), WAIT_FOR_CANCEL_MS);
      worker.once('resumed', () => {
        clearTimeout(timer);
        resolve(true);
      });
    });
    worker.interruptConnection();
    return { resumed: await resumed };
  });

  handle('duplicate', () => {
    worker.debug.duplicateNextReport();
    return { ok: true };
  });

  return worker;
}

async function main(): Promise<number> {
  const worker = buildWorker(process.env);
  let stopping = false;
  const stopped = new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) process.exit(1); // a second signal stops at once
      stopping = true;
      void worker.stop({ reason: signal }).then(resolve);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  try {
    await worker.start();
  } catch (err) {
    process.stderr.write(`${JSON.stringify({ level: 'error', msg: 'the server refused the worker', error: String(err) })}\n`);
    return 1;
  }
  await stopped;
  emit({ event: 'stopped' });
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${String(err instanceof Error ? err.stack : err)}\n`);
    process.exitCode = 1;
  },
);
