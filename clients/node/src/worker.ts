/**
 * The Tasker worker: register handlers, run them for the server, stop gracefully.
 *
 * ```ts
 * const worker = new Worker({ address: 'localhost:50051', token, concurrency: 8 });
 * worker.handle('payments.charge', async (step, ctx) => {
 *   await ctx.progress({ stage: 'authorizing' });
 *   return { charged: step.context.amount };
 * });
 * await worker.start();
 * process.on('SIGTERM', () => void worker.stop());
 * ```
 *
 * One bidirectional stream carries everything; handlers run on the event loop, at
 * most `concurrency` at once. Reports are kept until the server acknowledges them
 * (after commit) and resent after a reconnect.
 */
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import type { Hello } from './gen/tasker/v1/worker.js';
import { WorkerServiceClient } from './gen/tasker/v1/worker.js';
import type { CancelledError, TaskerError } from './errors.js';
import type { Step, StepHandler } from './handler.js';
import { Backoff } from './internal/backoff.js';
import type { BackoffOptions } from './internal/backoff.js';
import type { ConnectionOptions } from './internal/grpc.js';
import { authMetadata, channelCredentials } from './internal/grpc.js';
import type { Logger } from './internal/logger.js';
import { defaultLogger } from './internal/logger.js';
import { ReportBuffer } from './internal/report-buffer.js';
import { Session } from './internal/session.js';
import type { ReconnectInfo, SessionInfo } from './internal/session.js';
import { SlotQueue } from './internal/slot-queue.js';
import { StepRunner } from './internal/step-runner.js';
import type { StepFailure } from './models.js';
import { templateToProto } from './templates.js';
import type { TemplateInput } from './templates.js';
import { SDK_LANGUAGE, SDK_VERSION } from './version.js';

/** Options of {@link Worker}. */
export interface WorkerOptions extends ConnectionOptions {
  /** Name shown by ListWorkers (default `<hostname>-<pid>`). */
  readonly name?: string;
  /** Handlers run at once, and the credit advertised to the server (default 10). */
  readonly concurrency?: number;
  /** Handlers by name; more can be added with {@link Worker.handle} before `start()`. */
  readonly handlers?: Readonly<Record<string, StepHandler>>;
  /** Only take steps of these namespaces (default: every namespace the token covers). */
  readonly namespaces?: readonly string[];
  /** Free-form labels shown by ListWorkers (default `{ host: hostname }`). */
  readonly labels?: Readonly<Record<string, string>>;
  /** Templates the server registers when the worker connects. */
  readonly templates?: readonly TemplateInput[];
  /** Heartbeat interval until the server's Welcome names one (which wins); default 5000. */
  readonly heartbeatIntervalMs?: number;
  /** Reconnect backoff: delays grow from `initialMs` (100) to `maxMs` (5000), jittered. */
  readonly reconnect?: BackoffOptions;
  /** Default grace period of {@link Worker.stop} (30000). */
  readonly shutdownGraceMs?: number;
  /** Where the SDK logs (pino-shaped); default: warnings and errors on stderr. */
  readonly logger?: Logger;
}

/** Options of {@link Worker.stop}. */
export interface StopOptions {
  /** How long in-flight handlers may run before their signals abort (default `shutdownGraceMs`). */
  readonly graceMs?: number;
  /** Why, sent in Drain and logged (default `stop requested`). */
  readonly reason?: string;
}

/** The events a {@link Worker} emits. */
export interface WorkerEvents {
  /** A new session started (the first Welcome, and again after a session expired). */
  ready: [info: SessionInfo];
  /** The session was resumed after a reconnect; in-flight steps were kept. */
  resumed: [info: SessionInfo];
  /** The stream ended; a new one opens after `delayMs`. */
  reconnecting: [info: ReconnectInfo];
  /** A refused report (`ReportRejectedError`) or a refused session (`TaskerError`, after which the worker stops). Emitted only when someone listens; always logged. */
  error: [error: Error];
  /** The server committed a step's result. */
  'step:completed': [step: Step, result: unknown];
  /** The server committed a step's failure. */
  'step:failed': [step: Step, failure: StepFailure, error: unknown];
  /** A held step was taken away: its task was cancelled, or it is no longer this worker's. */
  cancelled: [step: Step, reason: CancelledError];
  /** The server is shutting down; the worker reconnects once it closes the stream. */
  draining: [info: { reason: string; graceMs: number }];
  /** `stop()` finished. */
  stopped: [];
}

/** Extra time for aborted handlers to settle and for the stream to close, after the grace period. */
const SETTLE_MS = 2_000;

function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, ms));
  });
  return Promise.race([promise.then(() => true), timeout]).finally(() => clearTimeout(timer));
}

/** A worker process's one session with Tasker. See the file comment. */
export class Worker extends EventEmitter<WorkerEvents> {
  readonly name: string;
  /** Test and drill switches; see {@link Worker.debug}. */
  readonly debug: { duplicateNextReport(): void };
  readonly #options: WorkerOptions;
  readonly #logger: Logger;
  readonly #handlers = new Map<string, StepHandler>();
  readonly #reports = new ReportBuffer();
  #concurrency: number;
  #client: WorkerServiceClient | null = null;
  #runner: StepRunner | null = null;
  #session: Session | null = null;
  #started: Promise<SessionInfo> | null = null;
  #settleStart: { resolve(info: SessionInfo): void; reject(err: Error): void } | null = null;
  #stopping: Promise<void> | null = null;

  constructor(options: WorkerOptions) {
    super();
    this.#options = options;
    this.#logger = options.logger ?? defaultLogger;
    this.#concurrency = SlotQueue.checkLimit(options.concurrency ?? 10);
    this.name = options.name ?? `${hostname()}-${process.pid}`;
    for (const [name, fn] of Object.entries(options.handlers ?? {})) this.handle(name, fn);
    this.debug = {
      /**
       * Test switch: the next final report is sent twice with the same report_id. From
       * inside a handler it applies to that step's final report; elsewhere to the next
       * one of any step. The server must acknowledge the copy DUPLICATE with no second effect.
       */
      duplicateNextReport: () => {
        if (!this.#runner) throw new Error('the worker is not started');
        this.#runner.armDuplicate();
      },
    };
  }

  /** Registers `fn(step, ctx)` as the handler called `name`. Only before `start()`. */
  handle(name: string, fn: StepHandler): this {
    if (this.#started) throw new Error('register handlers before starting the worker');
    if (this.#handlers.has(name)) throw new Error(`handler "${name}" is already registered`);
    this.#handlers.set(name, fn);
    return this;
  }

  /** Names of the registered handlers, sorted. */
  get handlerNames(): string[] {
    return [...this.#handlers.keys()].sort();
  }

  /** Handlers run at once; also the credit advertised to the server. */
  get concurrency(): number {
    return this.#concurrency;
  }

  /** Changes the concurrency; the server is told with a Credit message. */
  setConcurrency(concurrency: number): void {
    this.#concurrency = SlotQueue.checkLimit(concurrency);
    this.#runner?.setConcurrency(concurrency);
    this.#session?.setCredit(concurrency);
  }

  /** The latest Welcome, or null before the first. */
  get session(): SessionInfo | null {
    return this.#session?.info ?? null;
  }

  /** True while a welcomed stream is attached. */
  get connected(): boolean {
    return this.#session?.connected ?? false;
  }

  /** Steps held: running, or waiting for a free slot. */
  get inFlight(): number {
    return this.#runner?.held ?? 0;
  }

  /** Reports sent (or waiting to be sent) and not yet acknowledged. */
  get unacknowledgedReports(): number {
    return this.#reports.unackedCount;
  }

  /**
   * Connects and starts taking steps. Resolves with the first Welcome; rejects if the
   * server refuses the session (bad token, invalid template, ...) or `stop()` is
   * called first. Reconnects quietly while the server is unreachable.
   */
  start(): Promise<SessionInfo> {
    if (this.#started) return this.#started;
    if (this.#handlers.size === 0) return Promise.reject(new Error('register at least one handler before starting the worker'));
    this.#started = new Promise<SessionInfo>((resolve, reject) => {
      this.#settleStart = { resolve, reject };
    });
    const o = this.#options;
    this.#client = new WorkerServiceClient(o.address, channelCredentials(o), o.channelOptions ?? {});
    this.#runner = new StepRunner({
      handlers: this.#handlers,
      reports: this.#reports,
      concurrency: this.#concurrency,
      logger: this.#logger,
      events: {
        completed: (step, result) => this.emit('step:completed', step, result),
        failed: (step, failure, error) => this.emit('step:failed', step, failure, error),
        cancelled: (step, reason) => this.emit('cancelled', step, reason),
        rejected: (error) => this.#emitError(error),
      },
    });
    this.#session = new Session({
      client: this.#client,
      metadata: authMetadata(o.token),
      hello: this.#hello(),
      runner: this.#runner,
      reports: this.#reports,
      backoff: new Backoff(o.reconnect),
      logger: this.#logger,
      fallbackHeartbeatMs: o.heartbeatIntervalMs ?? 5_000,
      events: {
        welcome: (info) => this.#onWelcome(info),
        reconnecting: (info) => this.emit('reconnecting', info),
        fatal: (error) => void this.#onFatal(error),
        serverDrain: (drain) => this.emit('draining', drain),
      },
    });
    this.#logger.info({ worker: this.name, address: o.address, handlers: this.#handlers.size, concurrency: this.#concurrency }, 'worker connecting');
    this.#session.start();
    return this.#started;
  }

  #hello(): Hello {
    const o = this.#options;
    return {
      workerName: this.name,
      language: SDK_LANGUAGE,
      sdkVersion: SDK_VERSION,
      handlers: this.handlerNames,
      namespaces: [...(o.namespaces ?? [])],
      maxInFlight: this.#concurrency,
      labels: { ...(o.labels ?? { host: hostname() }) },
      resumeHandle: '',
      templates: (o.templates ?? []).map(templateToProto),
    };
  }

  #onWelcome(info: SessionInfo): void {
    this.#settleStart?.resolve(info);
    this.#settleStart = null;
    this.emit(info.resumed ? 'resumed' : 'ready', info);
  }

  #emitError(error: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
  }

  async #onFatal(error: TaskerError): Promise<void> {
    this.#settleStart?.reject(error);
    this.#settleStart = null;
    this.#emitError(error);
    const reason = `the server refused the session: ${error.code}`;
    this.#runner?.dropAllExcept(new Set(), 'lost', reason);
    this.#reports.discardAll(new Error(reason));
    await this.stop({ graceMs: 0, reason: `fatal: ${error.code}` });
  }

  /**
   * Stops gracefully: sends Drain (no new steps), lets held steps finish within
   * `graceMs` (then aborts their signals), waits for their reports to be
   * acknowledged, and closes the stream. Idempotent. A handler may call it, but must
   * not await it: it waits for that handler's own step too.
   */
  stop(options: StopOptions = {}): Promise<void> {
    this.#stopping ??= this.#stop(options.graceMs ?? this.#options.shutdownGraceMs ?? 30_000, options.reason ?? 'stop requested');
    return this.#stopping;
  }

  async #stop(graceMs: number, reason: string): Promise<void> {
    const session = this.#session;
    const runner = this.#runner;
    if (!session || !runner) {
      this.emit('stopped');
      return;
    }
    this.#settleStart?.reject(new Error('the worker was stopped before it connected'));
    this.#settleStart = null;
    const deadline = Date.now() + Math.max(0, graceMs);
    this.#logger.info({ reason, graceMs, held: runner.held }, 'worker stopping: draining');
    session.drain(reason, graceMs);
    if (!(await within(runner.whenIdle(), deadline - Date.now()))) {
      const aborted = runner.abortAll(reason);
      this.#logger.warn({ aborted }, 'grace period over: aborted the running handlers');
      await within(runner.whenIdle(), SETTLE_MS);
    }
    if (!(await within(this.#reports.whenAllAcked(), Math.max(deadline - Date.now(), SETTLE_MS)))) {
      this.#logger.warn({ unacknowledged: this.#reports.unackedCount }, 'stopping with unacknowledged reports');
    }
    await session.close(SETTLE_MS);
    this.#client?.close();
    this.#logger.info({}, 'worker stopped');
    this.emit('stopped');
  }

  /**
   * Drops the session stream as a network fault would. The worker reconnects with
   * its session handle, keeps its in-flight steps and resends unacknowledged reports.
   * For tests and operations drills.
   */
  interruptConnection(): void {
    this.#session?.interrupt();
  }
}
