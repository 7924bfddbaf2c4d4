/**
 * vitest globalSetup for the integration and e2e projects: provides a PostgreSQL
 * server (TASKER_TEST_DATABASE_URL, or a throwaway cluster) and a template database
 * migrated with the current migrations/ and sql/, cloned by each test database.
 */
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { openDatabase } from '../../src/store/database.js';
import { migrate } from '../../src/store/migrator.js';
import { redactDatabaseUrl } from '../../src/store/postgres-database.js';
import { migrationsDir, quoteIdent, sqlDir, withDatabaseName } from './paths.js';
import { startPgCluster } from './pg-cluster.js';

/** Name of the migrated template database. */
export const TEMPLATE_DB = 'tasker_template';

async function withAdmin<T>(adminUrl: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function prepareTemplate(adminUrl: string): Promise<number> {
  await withAdmin(adminUrl, async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${quoteIdent(TEMPLATE_DB)} WITH (FORCE)`);
    await client.query(`CREATE DATABASE ${quoteIdent(TEMPLATE_DB)}`);
  });
  const database = await openDatabase({ url: withDatabaseName(adminUrl, TEMPLATE_DB), applicationName: 'tasker-test-setup' });
  try {
    const result = await migrate(database, { migrationsDir, sqlDir });
    return result.version;
  } finally {
    // No session may stay connected to a template: CREATE DATABASE ... TEMPLATE would refuse.
    await database.close();
  }
}

/** Starts (or adopts) the server, migrates the template, and returns the teardown. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const external = process.env.TASKER_TEST_DATABASE_URL?.trim();
  const server = external
    ? { adminUrl: external, description: `${redactDatabaseUrl(external)} (TASKER_TEST_DATABASE_URL)`, stop: async () => {} }
    : await startPgCluster();
  let version: number;
  try {
    version = await prepareTemplate(server.adminUrl);
  } catch (err) {
    await server.stop();
    throw err;
  }
  console.log(`[${project.name}] PostgreSQL for tests: ${server.description}; ${TEMPLATE_DB} at schema version ${version}`);
  project.provide('pgAdminUrl', server.adminUrl);
  project.provide('pgTemplateDb', TEMPLATE_DB);
  return async () => {
    if (external) {
      await withAdmin(server.adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${quoteIdent(TEMPLATE_DB)} WITH (FORCE)`)).catch(
        () => undefined,
      );
    }
    await server.stop();
  };
}
