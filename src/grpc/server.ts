/**
 * The gRPC server: Tasker's services plus the standard `grpc.health.v1.Health` and
 * server reflection (so grpcurl and evans can list and describe everything served),
 * bound to `server.host:server.port`, plaintext or TLS.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.js';
import { ConfigError, UnavailableError } from '../domain/errors.js';
import { createHealth, HEALTH_SERVICE_NAME } from './health.js';
import type { Health } from './health.js';
import { createReflection } from './reflection.js';

/** One service to serve: its generated definition, its implementation and its fully-qualified name. */
export interface GrpcServiceRegistration {
  /** Fully-qualified proto name, e.g. `tasker.v1.TaskService` (health status and reflection use it). */
  name: string;
  definition: grpc.ServiceDefinition;
  implementation: grpc.UntypedServiceImplementation;
}

/** Options of {@link startGrpcServer}. */
export interface StartGrpcServerOptions {
  config: Pick<Config, 'server'>;
  logger: Logger;
  services: readonly GrpcServiceRegistration[];
}

/** A bound, serving gRPC server. */
export interface RunningGrpcServer {
  /** `host:port` actually bound (the real port when `server.port` was 0). */
  readonly address: string;
  readonly port: number;
  readonly server: grpc.Server;
  readonly health: Health;
  /**
   * Marks every service NOT_SERVING, stops accepting calls, waits up to `graceMs`
   * for in-flight calls, then cancels the rest. Idempotent.
   */
  shutdown(graceMs: number): Promise<void>;
}

/** `host:port`, with IPv6 literals bracketed. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

function readPem(path: string | null, key: string): Buffer | null {
  if (path === null) return null;
  try {
    return readFileSync(path);
  } catch (err) {
    throw new ConfigError(`invalid configuration: server.tls.${key}: expected a readable PEM file, got ${(err as Error).message}`);
  }
}

function credentialsFor(tls: Config['server']['tls']): grpc.ServerCredentials {
  if (!tls.enabled) return grpc.ServerCredentials.createInsecure();
  const cert = readPem(tls.cert_file, 'cert_file');
  const key = readPem(tls.key_file, 'key_file');
  if (!cert || !key) throw new ConfigError('invalid configuration: server.tls: expected cert_file and key_file while tls is enabled');
  const ca = readPem(tls.client_ca_file, 'client_ca_file');
  return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: cert, private_key: key }], ca !== null);
}

function bind(server: grpc.Server, target: string, credentials: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(target, credentials, (err, port) => (err ? reject(err) : resolve(port)));
  });
}

function bindError(err: Error, target: string): Error {
  if (/EADDRINUSE|address already in use/i.test(err.message)) {
    return new UnavailableError(`cannot listen on ${target}: address already in use (is another Tasker running?)`, 'ADDRESS_IN_USE', {
      address: target,
    });
  }
  if (/EADDRNOTAVAIL|EACCES|ENOTFOUND|EAI_AGAIN/i.test(err.message)) {
    return new UnavailableError(`cannot listen on ${target}: ${err.message}`, 'ADDRESS_UNAVAILABLE', { address: target });
  }
  return err;
}

/** Builds the server, registers services, health and reflection, and binds. */
export async function startGrpcServer(options: StartGrpcServerOptions): Promise<RunningGrpcServer> {
  const cfg = options.config.server;
  const logger = options.logger;
  const credentials = credentialsFor(cfg.tls);
  const server = new grpc.Server({ 'grpc.max_receive_message_length': cfg.max_receive_message_bytes });
  for (const service of options.services) server.addService(service.definition, service.implementation);
  const names = options.services.map((s) => s.name);
  const health = createHealth(names);
  health.addToServer(server);
  if (cfg.reflection) createReflection([...names, HEALTH_SERVICE_NAME]).addToServer(server);

  const target = formatAddress(cfg.host, cfg.port);
  let port: number;
  try {
    port = await bind(server, target, credentials);
  } catch (err) {
    server.forceShutdown();
    throw bindError(err as Error, target);
  }
  health.setAll('SERVING');
  const address = formatAddress(cfg.host, port);
  logger.debug({ address, services: names, tls: cfg.tls.enabled, reflection: cfg.reflection }, 'gRPC server bound');

  let stopping: Promise<void> | null = null;
  const shutdown = (graceMs: number): Promise<void> => {
    stopping ??= new Promise<void>((resolve) => {
      health.setAll('NOT_SERVING');
      const timer = setTimeout(() => {
        logger.warn({ graceMs }, 'calls still running after the shutdown grace period: cancelling them');
        server.forceShutdown();
      }, graceMs);
      timer.unref();
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    return stopping;
  };
  return { address, port, server, health, shutdown };
}

/**
 * Sends grpc-js's own diagnostics (otherwise printed to stderr as "E …") to `logger`
 * at debug level: every condition they report that matters to a caller is surfaced
 * by Tasker itself (bind failures, call statuses). grpc-js keeps one process-wide
 * logger, so only the CLI (the process owner) calls this.
 */
export function routeGrpcLogs(logger: Logger): void {
  const forward = (message?: unknown, ...rest: unknown[]) => logger.debug([message, ...rest].map(String).join(' '));
  grpc.setLogger({ error: forward, info: forward, debug: forward });
}
