/**
 * The composition root: opens the database, brings the schema up to date, starts the
 * engine components and the gRPC server, and stops them in the reverse order.
 *
 * Adding a part is one line in `buildParts`: a long-running component (with
 * `start()`/`stop()`) in `components`, a gRPC service in `services`. Components
 * start in order before the server accepts calls and stop in reverse after it stopped.
 */
import type { Logger } from 'pino';
import type { Config } from './config/schema.js';
import { migrationsDir, sqlDir } from './config/paths.js';
import { systemClock } from './domain/clock.js';
import { FailedPreconditionError } from './domain/errors.js';
import { Reaper } from './engine/reaper.js';
import { TemplateRegistry } from './engine/template-registry.js';
import type { Authenticator } from './grpc/auth.js';
import { createAuthenticator } from './grpc/auth.js';
import type { RpcHandlers } from './grpc/handlers.js';
import { createRpcHandlers } from './grpc/handlers.js';
import type { GrpcServiceRegistration, RunningGrpcServer } from './grpc/server.js';
import { startGrpcServer } from './grpc/server.js';
import { createApplicationRuntime, templateConverter, templateMappingOf } from './grpc/services/application-runtime.js';
import { createWorkerRuntime } from './grpc/services/worker-runtime.js';
import type { Database } from './store/database.js';
import { openDatabase } from './store/database.js';
import { checkSchemaVersion, migrate } from './store/migrator.js';

/** A long-running part of Tasker (dispatcher, reaper, …). `stop()` finishes in-flight work. */
export interface Component {
  readonly name: string;
  start(): Promise<void> | void;
  stop(): Promise<void> | void;
}

/** What services and components are built from. */
export interface AppDeps {
  readonly config: Config;
  readonly logger: Logger;
  readonly database: Database;
  readonly authenticator: Authenticator;
  /** The handler wrappers every service implementation uses. */
  readonly handlers: RpcHandlers;
}

/** A running Tasker. */
export interface RunningTasker {
  /** `host:port` the gRPC server listens on. */
  readonly address: string;
  readonly port: number;
  readonly config: Config;
  readonly database: Database;
  readonly grpc: RunningGrpcServer;
  /** Health NOT_SERVING → stop accepting (grace period) → stop components in reverse → close the database. Idempotent. */
  stop(): Promise<void>;
}

/** What {@link buildParts} returns: components in start order, and the services to serve. */
export interface AppParts {
  readonly components: Component[];
  readonly services: GrpcServiceRegistration[];
}

/**
 * Builds Tasker's parts from its dependencies. Engine components go in `components`
 * (started in order, stopped in reverse); gRPC services in `services` (health and
 * reflection are added by the server itself). Services may hold the components they use.
 */
function buildParts(deps: AppDeps): AppParts {
  const components: Component[] = [];
  const services: GrpcServiceRegistration[] = [];
  // One template mapping (engine.default_retry, environment) for every way a template arrives:
  // files loaded at start, RegisterTemplate, and the templates workers ship in Hello.
  const mapping = templateMappingOf(deps.config);
  const templates = new TemplateRegistry({
    db: deps.database.db,
    clock: systemClock,
    defaults: mapping.defaults,
    logger: deps.logger.child({ component: 'templates' }),
  });

  // Worker protocol: WorkerService.Connect with its sessions, dispatcher, result processor and wake-ups.
  const workers = createWorkerRuntime({ ...deps, clock: systemClock, templateRegistry: templates, templateFromProto: templateConverter(mapping) });
  components.push(...workers.components);
  services.push(workers.service);

  // Application API: TemplateService, TaskService, AdminService, the event bus behind their streams, template files loaded at start.
  const api = createApplicationRuntime({ ...deps, clock: systemClock, templateRegistry: templates, hub: workers.hub, workers: workers.local });
  components.push(...api.components);
  services.push(...api.services);

  // Timers driven from database timestamps: lease expiry, step timeouts, session expiry.
  const reaper = new Reaper({
    db: deps.database.db,
    clock: systemClock,
    intervalMs: deps.config.engine.reaper_interval_ms,
    // A live instance ends a stream silent for lease_ms; twice that means the instance is gone.
    silenceMs: 2 * deps.config.workers.lease_ms,
    logger: deps.logger.child({ component: 'reaper' }),
  });
  components.push({ name: 'reaper', start: () => reaper.start(), stop: () => reaper.stop() });

  return { components, services };
}

async function prepareSchema(config: Config, database: Database, logger: Logger): Promise<void> {
  if (config.database.migrate_on_start) {
    await migrate(database, { migrationsDir, sqlDir, logger });
    return;
  }
  const { version, pending } = await checkSchemaVersion(database, migrationsDir);
  if (pending.length > 0) {
    throw new FailedPreconditionError(
      `database schema is at version ${version} with ${pending.length} pending migration(s) (${pending.join(', ')}): ` +
        'run `tasker migrate`, or set database.migrate_on_start: true',
      'SCHEMA_PENDING',
      { version, pending },
    );
  }
}

async function stopAll(components: readonly Component[], logger: Logger): Promise<void> {
  for (const component of [...components].reverse()) {
    try {
      await component.stop();
    } catch (err) {
      logger.error({ err, component: component.name }, 'component failed to stop cleanly');
    }
  }
}

/** Opens the configured database (PostgreSQL or PGlite) with the pool settings from config. */
export function openConfiguredDatabase(config: Config, logger: Logger): Promise<Database> {
  return openDatabase({
    url: config.database.url,
    dataDir: config.database.data_dir,
    poolSize: config.database.pool_size,
    statementTimeoutMs: config.database.statement_timeout_ms || undefined,
    connectTimeoutMs: config.database.connect_timeout_ms,
    applicationName: `tasker ${config.server.instance_id}`.slice(0, 63),
    logger: logger.child({ component: 'store' }),
  });
}

/**
 * Starts Tasker: database, schema, components, gRPC server. On a failure part-way,
 * whatever was started is stopped again before the error is rethrown.
 */
export async function startTasker(config: Config, logger: Logger): Promise<RunningTasker> {
  const database = await openConfiguredDatabase(config, logger);
  const started: Component[] = [];
  const shutdown = new AbortController();
  let grpc: RunningGrpcServer;
  try {
    await prepareSchema(config, database, logger.child({ component: 'migrator' }));
    const authenticator = createAuthenticator(config.auth);
    const handlers = createRpcHandlers({ authenticator, logger: logger.child({ component: 'grpc' }), shutdownSignal: shutdown.signal });
    const deps: AppDeps = { config, logger, database, authenticator, handlers };
    const parts = buildParts(deps);
    for (const component of parts.components) {
      await component.start();
      started.push(component);
    }
    grpc = await startGrpcServer({ config, logger: logger.child({ component: 'grpc' }), services: parts.services });
  } catch (err) {
    await stopAll(started, logger);
    await database.close();
    throw err;
  }
  if (!config.auth.enabled) logger.warn('auth is disabled (auth.enabled: false): every call is accepted; development only');
  logger.info(
    { address: grpc.address, database: database.description, instance: config.server.instance_id, environment: config.environment },
    `Tasker listening on ${grpc.address} (database: ${database.description}, instance ${config.server.instance_id})`,
  );

  let stopping: Promise<void> | null = null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      logger.info('stopping');
      grpc.health.setAll('NOT_SERVING');
      shutdown.abort();
      await grpc.shutdown(config.server.shutdown_grace_ms);
      await stopAll(started, logger);
      await database.close();
      logger.info('stopped');
    })();
    return stopping;
  };
  return { address: grpc.address, port: grpc.port, config, database, grpc, stop };
}
