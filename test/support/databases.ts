/**
 * Per-test databases on both backends, so store tests run with
 * `describe.each(backends)('... on $name', ({ create }) => ...)`.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { inject } from 'vitest';
import type { Database } from '../../src/store/database.js';
import { openDatabase } from '../../src/store/database.js';
import { migrate } from '../../src/store/migrator.js';
import { migrationsDir, quoteIdent, sqlDir, withDatabaseName } from './paths.js';

/** A database that exists for one test file (or one test); `close()` closes and deletes it. */
export interface TestDatabase {
  readonly database: Database;
  /** PostgreSQL URL of this database; null for PGlite. */
  readonly url: string | null;
  close(): Promise<void>;
}

/** Options of the `create*TestDatabase` functions. */
export interface CreateTestDatabaseOptions {
  /** Start with no Tasker schema (clone of template0 / PGlite without migrations). */
  empty?: boolean;
  logger?: Logger;
}

async function adminQuery(adminUrl: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/** A fresh PostgreSQL database `tasker_test_<random>`, cloned from the migrated template (or template0 when empty). */
export async function createPostgresTestDatabase(options: CreateTestDatabaseOptions = {}): Promise<TestDatabase> {
  const adminUrl = inject('pgAdminUrl');
  const template = options.empty ? 'template0' : inject('pgTemplateDb');
  const name = `tasker_test_${randomBytes(6).toString('hex')}`;
  await adminQuery(adminUrl, `CREATE DATABASE ${quoteIdent(name)} TEMPLATE ${quoteIdent(template)}`);
  const url = withDatabaseName(adminUrl, name);
  let database: Database;
  try {
    database = await openDatabase({ url, poolSize: 5, applicationName: 'tasker-test', logger: options.logger });
  } catch (err) {
    await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
    throw err;
  }
  return {
    database,
    url,
    async close() {
      await database.close();
      await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
    },
  };
}

/** A fresh in-memory PGlite database, migrated with the real migrations/ and sql/ unless `empty`. */
export async function createPgliteTestDatabase(options: CreateTestDatabaseOptions = {}): Promise<TestDatabase> {
  const database = await openDatabase({ logger: options.logger });
  if (!options.empty) {
    try {
      await migrate(database, { migrationsDir, sqlDir, logger: options.logger });
    } catch (err) {
      await database.close();
      throw err;
    }
  }
  return { database, url: null, close: () => database.close() };
}

/** One entry per backend, for `describe.each(backends)`. */
export interface TestBackend {
  readonly name: 'postgres' | 'pglite';
  readonly create: (options?: CreateTestDatabaseOptions) => Promise<TestDatabase>;
}

/** Both backends; store tests run against each. */
export const backends: readonly TestBackend[] = [
  { name: 'postgres', create: createPostgresTestDatabase },
  { name: 'pglite', create: createPgliteTestDatabase },
];

/** Where an e2e test's server keeps its data: `url` for PostgreSQL, null for PGlite in memory. */
export interface ServerTarget {
  readonly url: string | null;
  close(): Promise<void>;
}

/** One entry per backend for tests that start a server (it opens its own pool from the URL). */
export interface ServerBackend {
  readonly name: 'PostgreSQL' | 'PGlite';
  readonly open: () => Promise<ServerTarget>;
}

/** Both backends for `describe.each(serverBackends)` in tests that start a server. */
export const serverBackends: readonly ServerBackend[] = [
  {
    name: 'PostgreSQL',
    open: async () => {
      // Only the URL is needed; the test database stays until close().
      const db = await createPostgresTestDatabase();
      return { url: db.url, close: () => db.close() };
    },
  },
  { name: 'PGlite', open: async () => ({ url: null, close: async () => {} }) },
];
