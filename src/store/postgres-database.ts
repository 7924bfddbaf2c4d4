/** Opening the PostgreSQL backend of {@link Database}: a `pg.Pool` under Kysely's PostgresDialect. */
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { UnavailableError } from '../domain/errors.js';
import type { Database, OpenDatabaseOptions } from './database.js';
import { PgNotificationListener } from './listen.js';
import { usePreparedStatements } from './prepared-statements.js';
import type { DB } from './schema.js';
import { createPgTypes } from './type-parsing.js';

const SAFE_QUERY_PARAMS = ['host', 'port', 'sslmode'];

/**
 * A PostgreSQL URL without its password (and without query parameters other than
 * host/port/sslmode, which may carry secrets), for logs and error messages.
 */
export function redactDatabaseUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'PostgreSQL (unparsable connection string)';
  }
  const user = parsed.username ? `${parsed.username}@` : '';
  const kept = SAFE_QUERY_PARAMS.filter((name) => parsed.searchParams.has(name))
    .map((name) => `${name}=${encodeURIComponent(parsed.searchParams.get(name) ?? '')}`)
    .join('&');
  return `${parsed.protocol}//${user}${parsed.host}${parsed.pathname}${kept ? `?${kept}` : ''}`;
}

interface ErrorLike {
  message?: unknown;
  code?: unknown;
  errors?: unknown;
}

/** One readable clause for why connecting failed: the server's own message, or the socket error. */
export function describeConnectError(err: unknown, timeoutMs: number): string {
  const e = (typeof err === 'object' && err !== null ? err : { message: String(err) }) as ErrorLike;
  // Node reports a refused "localhost" (tried on ::1 and 127.0.0.1) as an AggregateError with an empty message.
  if (Array.isArray(e.errors) && e.errors.length > 0 && !e.message) return describeConnectError(e.errors[0], timeoutMs);
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : '';
  switch (code) {
    case 'ECONNREFUSED':
      return 'connection refused (ECONNREFUSED): is the server running and listening there?';
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `host not found (${code})`;
    case 'ETIMEDOUT':
      return `connection timed out (ETIMEDOUT)`;
    case 'ECONNRESET':
      return 'connection reset by the server (ECONNRESET)';
    default:
      break;
  }
  if (/timeout/i.test(message)) return `no answer within ${timeoutMs} ms`;
  if (/^[0-9A-Z]{5}$/.test(code)) return `${message} (SQLSTATE ${code})`;
  return message || code || 'unknown error';
}

async function checkConnectivity(config: pg.ClientConfig, description: string, timeoutMs: number): Promise<void> {
  const client = new pg.Client({ ...config, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('select 1');
  } catch (err) {
    const code = typeof (err as ErrorLike).code === 'string' ? String((err as ErrorLike).code) : undefined;
    throw new UnavailableError(
      `cannot connect to PostgreSQL at ${description}: ${describeConnectError(err, timeoutMs)}`,
      'DATABASE_UNREACHABLE',
      { database: description, ...(code ? { cause: code } : {}) },
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Opens a pool on `url` after one successful `select 1` (else `DATABASE_UNREACHABLE`).
 * Value parsing follows `type-parsing.ts`, per pool (the global pg parsers are untouched).
 */
export async function openPostgresDatabase(url: string, options: OpenDatabaseOptions): Promise<Database> {
  const description = redactDatabaseUrl(url);
  const applicationName = options.applicationName ?? 'tasker';
  const connectTimeoutMs = options.connectTimeoutMs ?? 5000;
  const base: pg.ClientConfig = {
    connectionString: url,
    application_name: applicationName,
    types: createPgTypes(),
    keepAlive: true,
  };
  await checkConnectivity(base, description, connectTimeoutMs);

  const pool = new pg.Pool({
    ...base,
    // Tasker's statements are short OLTP statements; JIT compilation only costs them
    // time, and the planner's inflated estimates for the recursive ancestor walk of a
    // claim would cross jit_above_cost (see claimReadySteps in step-claims.ts and
    // ancestorIds in ancestor-results.ts).
    options: '-c jit=off',
    max: options.poolSize ?? 10,
    ...(options.statementTimeoutMs !== undefined ? { statement_timeout: options.statementTimeoutMs } : {}),
  });
  usePreparedStatements(pool);
  // An idle client whose connection breaks emits 'error' on the pool; unhandled, it would crash the process.
  pool.on('error', (err) => options.logger?.warn({ err, database: description }, 'idle PostgreSQL connection failed'));
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  const listener = new PgNotificationListener({
    clientConfig: { ...base, application_name: `${applicationName}:listen`.slice(0, 63) },
    logger: options.logger,
  });
  options.logger?.debug({ database: description }, 'database opened');
  let closing: Promise<void> | null = null;

  return {
    db,
    kind: 'postgres',
    description,
    listen: (channel, onPayload) => listener.listen(channel, onPayload),
    close() {
      closing ??= (async () => {
        await listener.close();
        await db.destroy();
      })();
      return closing;
    },
  };
}
