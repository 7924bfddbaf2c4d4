/**
 * The database connection: PostgreSQL when a URL is configured, otherwise an
 * embedded PGlite (in memory or in a data directory). Everything above `store/`
 * sees only {@link Database}; repositories take `database.db` (or a transaction).
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { DB } from './schema.js';
import { openPgliteDatabase } from './pglite-database.js';
import { openPostgresDatabase } from './postgres-database.js';

/** Which engine is behind a {@link Database}. */
export type DatabaseKind = 'postgres' | 'pglite';

/** An open database: the Kysely instance plus what Kysely does not cover (LISTEN, lifecycle). */
export interface Database {
  readonly db: Kysely<DB>;
  readonly kind: DatabaseKind;
  /** Human-readable, password-redacted: "postgres://tasker@127.0.0.1:5432/tasker", "PGlite (in memory)" or "PGlite at ./.tasker-data". */
  readonly description: string;
  /**
   * LISTEN on `channel` (a lower-case identifier, see `assertChannelName`); resolves once
   * the subscription is active and returns the unsubscribe function. On PostgreSQL one
   * dedicated connection outside the pool carries every subscription and reconnects with
   * backoff if it drops (notifications sent meanwhile are lost).
   */
  listen(channel: string, onPayload: (payload: string) => void): Promise<() => Promise<void>>;
  /** Closes the pool (or PGlite) and the LISTEN connection. Idempotent. */
  close(): Promise<void>;
}

/** How to open the database; only `url` / `dataDir` choose the backend. */
export interface OpenDatabaseOptions {
  /** A PostgreSQL URL; when set, PostgreSQL is used and `dataDir` is ignored. */
  url?: string | null;
  /** PGlite data directory (created if missing); absent means PGlite in memory. */
  dataDir?: string | null;
  /** Maximum pool connections (PostgreSQL only). Default 10. */
  poolSize?: number;
  /** `statement_timeout` of every pooled connection (PostgreSQL only); absent means the server default. */
  statementTimeoutMs?: number;
  /** How long the connectivity check at open waits for the server (PostgreSQL only). Default 5000. */
  connectTimeoutMs?: number;
  /** `application_name` shown in pg_stat_activity (PostgreSQL only). Default "tasker". */
  applicationName?: string;
  logger?: Logger;
}

/**
 * Opens the configured database. For PostgreSQL the server is reached once before
 * returning; failure is an `UnavailableError` with code `DATABASE_UNREACHABLE` naming
 * the redacted URL and the cause. No schema work happens here (see `migrator.ts`).
 */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const url = options.url?.trim();
  if (url) return openPostgresDatabase(url, options);
  return openPgliteDatabase(options.dataDir?.trim() || null, options);
}
