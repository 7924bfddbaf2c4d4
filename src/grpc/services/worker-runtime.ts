/**
 * Everything the worker protocol needs on one instance, built together: the session
 * manager, the hub of attached streams, the dispatcher, the result processor, the
 * wake-ups, and the WorkerService registration that drives them. `app.ts` serves
 * `service` and runs `components` (in order; they stop in reverse).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import type { Clock } from '../../domain/clock.js';
import type { TaskTemplate } from '../../domain/template.js';
import { Dispatcher } from '../../engine/dispatcher.js';
import type { ReadyWork } from '../../engine/outcomes.js';
import { ResultProcessor } from '../../engine/result-processor.js';
import type { CommittedGroup } from '../../engine/result-processor.js';
import { SessionManager } from '../../engine/session-manager.js';
import type { TemplateRegistry } from '../../engine/template-registry.js';
import { Wakeups } from '../../engine/wakeups.js';
import { WorkerHub } from '../../engine/worker-hub.js';
import type { TaskTemplate as ProtoTaskTemplate } from '../../gen/tasker/v1/template.js';
import type { Database } from '../../store/database.js';
import type { RpcHandlers } from '../handlers.js';
import type { GrpcServiceRegistration } from '../server.js';
import { createWorkerService } from './worker-service.js';

/** A long-running part with `start()`/`stop()` (the shape of `app.ts`'s Component). */
export interface WorkerComponent {
  readonly name: string;
  start(): Promise<void> | void;
  stop(): Promise<void> | void;
}

/** What {@link createWorkerRuntime} needs. */
export interface WorkerRuntimeOptions {
  readonly database: Database;
  readonly config: Config;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly templateRegistry: Pick<TemplateRegistry, 'register'>;
  /** `server.instance_id` unless given. */
  readonly instanceId?: string;
  /** The handler wrappers (auth, context, error mapping). */
  readonly handlers: RpcHandlers;
  /**
   * Hello.templates → domain templates, as TemplateService.RegisterTemplate converts them.
   * Without it, a Hello carrying templates is refused (FAILED_PRECONDITION
   * `HELLO_TEMPLATES_UNSUPPORTED`) and the worker must register them through TemplateService.
   */
  readonly templateFromProto?: (template: ProtoTaskTemplate) => TaskTemplate;
}

/**
 * What the rest of this instance can do with its worker protocol, in-process: dispatch
 * steps it made ready (their `tasker_ready` notification tagged with `notifyOrigin`,
 * whose echo this instance skips) and hear of every group commit of worker reports.
 */
export interface LocalWorkers {
  readonly notifyOrigin: string;
  /** Wakes the attached sessions serving these handlers, at once. */
  dispatch(ready: readonly ReadyWork[]): void;
  /** Calls `listener` after each group commit of worker reports (see `CommittedGroup`). */
  onCommitted(listener: (committed: CommittedGroup) => void): void;
}

/** The worker protocol of one instance. */
export interface WorkerRuntime {
  readonly service: GrpcServiceRegistration;
  /** In start order: results, dispatcher, sessions (hub), wake-ups. */
  readonly components: readonly WorkerComponent[];
  /** The attached sessions; `hub.deliverCancel(cancelledSteps, reason)` after a task is cancelled. */
  readonly hub: WorkerHub;
  readonly dispatcher: Dispatcher;
  readonly results: ResultProcessor;
  readonly sessions: SessionManager;
  /** For the application API of the same instance (`createApplicationRuntime`'s `workers`). */
  readonly local: LocalWorkers;
}

/** Builds the worker protocol; see the file comment. */
export function createWorkerRuntime(o: WorkerRuntimeOptions): WorkerRuntime {
  const { config, clock } = o;
  const db = o.database.db;
  const instanceId = o.instanceId ?? config.server.instance_id;
  const logger = o.logger.child({ component: 'workers' });
  const w = config.workers;
  const sessions = new SessionManager({
    db,
    clock,
    instanceId,
    templates: o.templateRegistry,
    logger,
    settings: {
      heartbeatIntervalMs: w.heartbeat_interval_ms,
      leaseMs: w.lease_ms,
      sessionTtlMs: w.session_ttl_ms,
      maxInFlight: w.max_in_flight,
      // A report can never be larger than a message the server accepts.
      maxReportBytes: Math.min(w.max_report_bytes, config.server.max_receive_message_bytes),
    },
  });
  const hub = new WorkerHub({ database: o.database, instanceId, clock, logger });
  // Tags this instance's commit notifications: it dispatches their ready steps itself.
  const notifyOrigin = randomBytes(8).toString('hex');
  const dispatcher = new Dispatcher({
    db,
    hub,
    clock,
    logger: logger.child({ component: 'dispatcher' }),
    leaseMs: w.lease_ms,
    dispatchBatchSize: config.engine.dispatch_batch_size,
    maxBatchBytes: w.max_batch_bytes,
    maxConcurrentClaims: Math.max(1, Math.min(4, config.database.pool_size - 1)),
  });
  const commitListeners: Array<(committed: CommittedGroup) => void> = [];
  const results = new ResultProcessor({
    db,
    clock,
    logger: logger.child({ component: 'results' }),
    groupCommitMax: config.engine.group_commit_max,
    groupCommitDelayMs: config.engine.group_commit_delay_ms,
    maxConcurrentGroups: config.database.pool_size > 2 ? 2 : 1,
    notifyOrigin,
    onCommitted: (committed) => {
      dispatcher.dispatchCommitted(committed);
      for (const listener of commitListeners) listener(committed);
    },
  });
  const wakeups = new Wakeups({
    database: o.database,
    dispatcher,
    hub,
    logger,
    clock,
    pollIntervalMs: config.engine.poll_interval_ms,
    silenceMs: w.lease_ms,
    ignoreOrigin: notifyOrigin,
  });
  const service = createWorkerService({
    handlers: o.handlers,
    sessions,
    hub,
    dispatcher,
    results,
    templateFromProto: o.templateFromProto ?? null,
    shutdownGraceMs: config.server.shutdown_grace_ms,
    logger,
  });
  const components: WorkerComponent[] = [
    { name: 'worker-results', start: () => results.start(), stop: () => results.stop() },
    { name: 'worker-dispatcher', start: () => dispatcher.start(), stop: () => dispatcher.stop() },
    {
      name: 'worker-sessions',
      start: () => undefined,
      stop: () => hub.drainAll('server shutting down', Math.floor(config.server.shutdown_grace_ms * 0.8), () => results.settledAll()),
    },
    { name: 'worker-wakeups', start: () => wakeups.start(), stop: () => wakeups.stop() },
  ];
  const local: LocalWorkers = {
    notifyOrigin,
    dispatch: (ready) => dispatcher.dispatchCommitted({ opened: [], ready, changed: false, completed: [] }),
    onCommitted: (listener) => void commitListeners.push(listener),
  };
  return { service, components, hub, dispatcher, results, sessions, local };
}
