/**
 * The gRPC client the CLI's remote commands use: where to connect, which token to
 * send, one call helper, and server errors turned into one readable line.
 *
 * Address: `--address host:port`, else the configured `server.host:server.port`
 * (a wildcard host becomes 127.0.0.1). Token: `--token`, else — when auth is
 * enabled — the first configured token holding the command's role (or `admin`).
 * TLS when `server.tls.enabled`, trusting `--ca-file` or the system roots.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { Config, Role } from '../config/schema.js';
import { AppError, ErrorCategory } from '../domain/errors.js';
import { AdminServiceClient } from '../gen/tasker/v1/admin.js';
import { TaskServiceClient } from '../gen/tasker/v1/task.js';
import { TemplateServiceClient } from '../gen/tasker/v1/template.js';
import { ERROR_CODE_KEY, ERROR_DETAILS_KEY, STATUS_OF_CATEGORY } from '../grpc/errors.js';
import { UsageError } from './command.js';

/** Options of every remote command, for `parseCommandArgs`. */
export const CLIENT_OPTIONS = {
  address: { type: 'string' },
  token: { type: 'string' },
  'ca-file': { type: 'string' },
  json: { type: 'boolean' },
} as const;

/** Usage lines of {@link CLIENT_OPTIONS}. */
export const CLIENT_USAGE = `      --address <h:p>   server to call (default: server.host:server.port from config)
      --token <token>   bearer token (default: the first configured token with the needed role)
      --ca-file <file>  PEM CA to trust when server.tls.enabled (default: system roots)
      --json            print JSON instead of text, one object per line (per file,
                        template, session or watch update; one per page for task list)`;

/** Where and how to call. */
export interface Connection {
  readonly address: string;
  readonly token: string | null;
  readonly credentials: grpc.ChannelCredentials;
}

/** Resolves the connection from the command line and the configuration. */
export function connectionFor(
  config: Config,
  values: { address?: string; token?: string; 'ca-file'?: string },
  role: Role,
): Connection {
  let address = values.address;
  if (!address) {
    if (config.server.port === 0) throw new UsageError('server.port is 0 (any free port): pass --address host:port');
    const host = ['0.0.0.0', '::', '[::]'].includes(config.server.host) ? '127.0.0.1' : config.server.host;
    address = host.includes(':') && !host.startsWith('[') ? `[${host}]:${config.server.port}` : `${host}:${config.server.port}`;
  }
  const configured = config.auth.enabled
    ? config.auth.tokens.find((t) => t.roles.includes(role)) ?? config.auth.tokens.find((t) => t.roles.includes('admin'))
    : undefined;
  const token = values.token ?? configured?.token ?? null;
  let credentials = grpc.credentials.createInsecure();
  if (config.server.tls.enabled) {
    const ca = values['ca-file'] ? readFileSync(values['ca-file']) : null;
    credentials = grpc.credentials.createSsl(ca);
  }
  return { address, token, credentials };
}

/** The three application services on one channel. */
export interface TaskerClients {
  readonly templates: TemplateServiceClient;
  readonly tasks: TaskServiceClient;
  readonly admin: AdminServiceClient;
  /** Call metadata carrying the bearer token. */
  metadata(): grpc.Metadata;
  close(): void;
}

/** Opens clients for `connection` (they share one channel). */
export function createClients(connection: Connection): TaskerClients {
  const templates = new TemplateServiceClient(connection.address, connection.credentials);
  const options = { channelOverride: templates.getChannel() };
  const tasks = new TaskServiceClient(connection.address, connection.credentials, options);
  const admin = new AdminServiceClient(connection.address, connection.credentials, options);
  return {
    templates,
    tasks,
    admin,
    metadata() {
      const metadata = new grpc.Metadata();
      if (connection.token) metadata.set('authorization', `Bearer ${connection.token}`);
      return metadata;
    },
    close() {
      templates.close();
    },
  };
}

/**
 * The violations of a refused document as indented `path: message` lines, leaving out
 * those the error message already states (servers put the first, or all, in it).
 */
export function violationLines(message: string, violations: ReadonlyArray<{ path?: string; message?: string }>): string[] {
  return violations
    .filter((v) => !message.includes(v.path ? `${v.path}: ${v.message ?? ''}` : (v.message ?? '')))
    .map((v) => `  ${v.path || '/'}: ${v.message ?? ''}`);
}

const CATEGORY_OF_STATUS = new Map<number, ErrorCategory>(
  Object.entries(STATUS_OF_CATEGORY).map(([category, status]) => [status, category as ErrorCategory]),
);

/** A call the server refused, as one readable line (status, reason, message, violations). */
export class RemoteCallError extends AppError {
  readonly code: string;
  readonly category: ErrorCategory;
  readonly status: grpc.status;

  constructor(err: grpc.ServiceError) {
    const reason = err.metadata?.get(ERROR_CODE_KEY)[0];
    const code = typeof reason === 'string' ? reason : grpc.status[err.code] ?? 'UNKNOWN';
    const raw = err.metadata?.get(ERROR_DETAILS_KEY)[0];
    let details: Record<string, unknown> = {};
    try {
      details = raw ? (JSON.parse(raw.toString()) as Record<string, unknown>) : {};
    } catch {
      details = {};
    }
    const violations = Array.isArray(details['violations']) ? (details['violations'] as Array<{ path?: string; message?: string }>) : [];
    const unreachable = err.code === grpc.status.UNAVAILABLE && !reason ? ' (is the server running? see --address)' : '';
    const lines = violationLines(err.details, violations).map((line) => `\n${line}`).join('');
    super(`${grpc.status[err.code] ?? err.code} ${code === grpc.status[err.code] ? '' : `${code}: `}${err.details}${unreachable}${lines}`, details);
    this.code = code;
    this.status = err.code;
    this.category = CATEGORY_OF_STATUS.get(err.code) ?? ErrorCategory.Unavailable;
  }
}

/** Calls a unary method; a refused call becomes a {@link RemoteCallError}. */
export function call<Req, Res>(
  method: (request: Req, metadata: grpc.Metadata, options: grpc.CallOptions, callback: (err: grpc.ServiceError | null, res: Res) => void) => unknown,
  request: Req,
  metadata: grpc.Metadata,
  timeoutMs = 30_000,
): Promise<Res> {
  return new Promise<Res>((resolve, reject) => {
    method(request, metadata, { deadline: Date.now() + timeoutMs }, (err, res) => (err ? reject(new RemoteCallError(err)) : resolve(res)));
  });
}
