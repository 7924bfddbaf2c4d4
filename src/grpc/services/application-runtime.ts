/**
 * Everything the application-facing API needs on one instance, built together: the
 * task manager and read queries, the event bus behind WatchTask and SubscribeEvents,
 * the loading of template files at start, and the TemplateService, TaskService and
 * AdminService registrations. `app.ts` serves `services` and runs `components` (in
 * order, before the server accepts calls; they stop in reverse).
 */
import type { Logger } from 'pino';
import type { Config } from '../../config/schema.js';
import type { Clock } from '../../domain/clock.js';
import type { TaskTemplate } from '../../domain/template.js';
import { EventBus } from '../../engine/event-bus.js';
import { TaskQueries } from '../../engine/queries.js';
import { TaskManager } from '../../engine/task-manager.js';
import type { TemplateRegistry } from '../../engine/template-registry.js';
import type { CancelledStepRef } from '../../engine/worker-hub.js';
import type { TaskTemplate as ProtoTaskTemplate } from '../../gen/tasker/v1/template.js';
import type { Database } from '../../store/database.js';
import type { RpcHandlers } from '../handlers.js';
import type { TemplateMapping } from '../mappers/template.js';
import { templateFromProto } from '../mappers/template.js';
import type { GrpcServiceRegistration } from '../server.js';
import { createAdminService } from './admin-service.js';
import { createTaskService } from './task-service.js';
import { createTemplateService } from './template-service.js';
import type { LocalWorkers } from './worker-runtime.js';

/** A long-running part with `start()`/`stop()` (the shape of `app.ts`'s Component). */
export interface ApplicationComponent {
  readonly name: string;
  start(): Promise<void> | void;
  stop(): Promise<void> | void;
}

/** What {@link createApplicationRuntime} needs. */
export interface ApplicationRuntimeOptions {
  readonly config: Config;
  readonly logger: Logger;
  readonly database: Database;
  readonly handlers: RpcHandlers;
  readonly clock: Clock;
  readonly templateRegistry: TemplateRegistry;
  /** Delivers Cancel to the sessions holding cancelled steps (the worker hub). */
  readonly hub: { deliverCancel(steps: readonly CancelledStepRef[], reason: string): Promise<void> };
  /**
   * The worker protocol of this instance (`WorkerRuntime.local`): tasks created here get
   * their root steps dispatched as soon as they commit, and watchers here hear of the
   * worker reports committed here at once, results included. Absent: both go through
   * PostgreSQL notifications only.
   */
  readonly workers?: LocalWorkers;
}

/** The application API of one instance. */
export interface ApplicationRuntime {
  readonly services: readonly GrpcServiceRegistration[];
  /** In start order: template files, event bus. */
  readonly components: readonly ApplicationComponent[];
  readonly bus: EventBus;
  readonly tasks: TaskManager;
  readonly queries: TaskQueries;
}

/**
 * How templates are completed on this server: `engine.default_retry` fills the retry fields a
 * template leaves out, and `environment` picks its overrides. The same mapping must serve every
 * way a template arrives — `app.ts` passes its defaults to the TemplateRegistry (template files,
 * stored bodies) and the mapping itself to RegisterTemplate and to Hello's templates.
 */
export function templateMappingOf(config: Config): TemplateMapping {
  const r = config.engine.default_retry;
  return {
    defaults: { retry: { maxAttempts: r.max_attempts, backoff: r.backoff, baseMs: r.base_ms, maxMs: r.max_ms, jitter: r.jitter } },
    environment: config.environment,
  };
}

/**
 * Hello.templates → domain templates, exactly as TemplateService.RegisterTemplate converts
 * them: with the same `mapping` (see {@link templateMappingOf}), whose defaults the template
 * registry also applies to template files.
 */
export function templateConverter(mapping: TemplateMapping): (template: ProtoTaskTemplate) => TaskTemplate {
  return (template) => templateFromProto(template, mapping);
}

/**
 * Registers the template files of `templates.dirs` (with `environment`'s overrides)
 * when `templates.register_on_start`; a bad file stops start-up with an error naming it.
 */
function templateLoader(o: ApplicationRuntimeOptions, logger: Logger): ApplicationComponent {
  return {
    name: 'template-files',
    async start() {
      const { dirs, register_on_start: enabled } = o.config.templates;
      if (!enabled || dirs.length === 0) return;
      const loaded = await o.templateRegistry.loadDirectories(dirs, o.config.environment);
      const created = loaded.filter((l) => l.created).length;
      logger.info({ files: loaded.length, created, dirs }, `template files loaded: ${loaded.length} (${created} new)`);
    },
    stop: () => undefined,
  };
}

/** Builds the application API; see the file comment. */
export function createApplicationRuntime(o: ApplicationRuntimeOptions): ApplicationRuntime {
  const { config, clock, database, handlers } = o;
  const logger = o.logger.child({ component: 'api' });
  const workers = o.workers;
  const tasks = new TaskManager({
    db: database.db,
    templates: o.templateRegistry,
    clock,
    logger: logger.child({ component: 'tasks' }),
    ...(workers ? { localDispatch: { origin: workers.notifyOrigin, dispatch: (ready) => workers.dispatch(ready) } } : {}),
  });
  const queries = new TaskQueries(database, clock);
  const bus = new EventBus({ database, logger: logger.child({ component: 'event-bus' }), pollIntervalMs: config.engine.poll_interval_ms });
  workers?.onCommitted((committed) => {
    if (!committed.changed) return;
    bus.rememberResults(committed.completed);
    bus.poke();
  });
  const services = [
    createTemplateService({ handlers, registry: o.templateRegistry, db: database.db, mapping: templateMappingOf(config) }),
    createTaskService({
      handlers,
      tasks,
      queries,
      bus,
      db: database.db,
      deliverCancel: (steps, reason) => o.hub.deliverCancel(steps, reason),
      logger,
    }),
    createAdminService({ handlers, queries, tasks, clock }),
  ];
  const components: ApplicationComponent[] = [
    templateLoader(o, logger.child({ component: 'templates' })),
    { name: 'event-bus', start: () => bus.start(), stop: () => bus.stop() },
  ];
  return { services, components, bus, tasks, queries };
}
