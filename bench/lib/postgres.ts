/**
 * The PostgreSQL a benchmark runs against: a throwaway cluster with durability ON
 * (`fsync`, `synchronous_commit`, `full_page_writes` at their defaults), or the
 * server named by `--database-url`. The cluster is the test harness's
 * (test/support/pg-cluster.ts), started with the bench's settings instead of the
 * tests' (which turn durability off for speed).
 *
 * Every scenario gets a fresh database (`bench_<scenario>_<n>`) on the throwaway
 * cluster; on an external server it uses the given database as it is and scopes its
 * measurements to a namespace of its own.
 */
import pg from 'pg';
import { startPgCluster } from '../../test/support/pg-cluster.js';

/** A PostgreSQL server the bench can use. */
export interface BenchPostgres {
  /** Superuser URL of the throwaway cluster, or the `--database-url` as given. */
  readonly url: string;
  /** True for the throwaway cluster: fresh databases can be created and its processes measured. */
  readonly owned: boolean;
  /** Postmaster pid (throwaway cluster only), for CPU accounting. */
  readonly postmasterPid: number | null;
  /** The server log (throwaway cluster only), where auto_explain writes plans. */
  readonly logFile: string | null;
  /** Data directory (throwaway cluster only). */
  readonly dataDir: string | null;
  readonly description: string;
  stop(): Promise<void>;
}

/**
 * Settings the throwaway cluster starts with. Durability is left at PostgreSQL's
 * defaults on purpose (fsync, synchronous_commit and full_page_writes all on): the
 * figures are what a real deployment on this disk would see.
 * pg_stat_statements is loaded so each run can report which statements took the
 * database's time; auto_explain is loaded but only logs when a run enables it.
 */
export const CLUSTER_SETTINGS: Readonly<Record<string, string>> = {
  listen_addresses: '127.0.0.1',
  max_connections: '200',
  shared_buffers: '512MB',
  max_wal_size: '4GB',
  checkpoint_timeout: '15min',
  fsync: 'on',
  synchronous_commit: 'on',
  full_page_writes: 'on',
  shared_preload_libraries: 'pg_stat_statements,auto_explain',
  'pg_stat_statements.track': 'top',
  'pg_stat_statements.track_planning': 'on',
  'auto_explain.log_min_duration': '-1',
  log_line_prefix: '%m [%p] ',
  lc_messages: 'C',
};

/** Starts a durable throwaway cluster (test/support/pg-cluster.ts with {@link CLUSTER_SETTINGS}). */
export async function startDurableCluster(): Promise<BenchPostgres> {
  const cluster = await startPgCluster({ settings: CLUSTER_SETTINGS, syncInitdb: true, prefix: 'tasker-bench-pg-', label: ', fsync on' });
  return {
    url: cluster.adminUrl,
    owned: true,
    postmasterPid: cluster.pid,
    logFile: cluster.logFile,
    dataDir: cluster.dataDir,
    description: cluster.description,
    stop: () => cluster.stop(),
  };
}

/** Adopts the server at `url` (`--database-url`): nothing is created or stopped. */
export function externalPostgres(url: string): BenchPostgres {
  const redacted = (() => {
    try {
      const u = new URL(url);
      if (u.password) u.password = '***';
      return u.toString();
    } catch {
      return '(unparsable URL)';
    }
  })();
  return {
    url,
    owned: false,
    postmasterPid: null,
    logFile: null,
    dataDir: null,
    description: `${redacted} (--database-url)`,
    stop: async () => undefined,
  };
}

/** `url` with its database name replaced by `database`. */
export function withDatabaseName(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

/** Runs `fn` with a plain client on `url`, closing it afterwards. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * The database URL a scenario runs on: on the throwaway cluster a new database
 * `name` (with pg_stat_statements installed); on an external server the given URL.
 */
export async function prepareScenarioDatabase(server: BenchPostgres, name: string): Promise<string> {
  if (!server.owned) return server.url;
  await withClient(server.url, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await c.query(`CREATE DATABASE "${name}"`);
  });
  const url = withDatabaseName(server.url, name);
  await withClient(url, (c) => c.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements'));
  return url;
}

/** Server version and the settings that matter to the figures, read from the server itself. */
export async function readServerSettings(url: string): Promise<{ version: string; settings: Record<string, string> }> {
  const names = [
    'fsync', 'synchronous_commit', 'full_page_writes', 'wal_level', 'shared_buffers', 'max_wal_size',
    'checkpoint_timeout', 'max_connections', 'work_mem', 'jit', 'shared_preload_libraries',
  ];
  return withClient(url, async (c) => {
    const version = (await c.query<{ v: string }>('select version() as v')).rows[0]?.v ?? 'unknown';
    const { rows } = await c.query<{ name: string; setting: string; unit: string | null }>(
      'select name, setting, unit from pg_settings where name = any($1::text[])',
      [names],
    );
    const settings: Record<string, string> = {};
    for (const r of rows) settings[r.name] = r.unit ? `${r.setting} (${r.unit})` : r.setting;
    return { version, settings };
  });
}
