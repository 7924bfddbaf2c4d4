/**
 * The PostgreSQL a benchmark runs against: a throwaway cluster with durability ON
 * (`fsync`, `synchronous_commit`, `full_page_writes` at their defaults), or the
 * server named by `--database-url`. The test cluster (test/support/pg-cluster.ts)
 * turns fsync off for speed, so the bench starts its own with the same binaries.
 *
 * Every scenario gets a fresh database (`bench_<scenario>_<n>`) on the throwaway
 * cluster; on an external server it uses the given database as it is and scopes its
 * measurements to a namespace of its own.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { findPgBinDir } from '../../test/support/pg-cluster.js';

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

function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function unprivilegedIds(): { uid: number; gid: number } {
  const uid = spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'nobody'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) throw new Error('running as root but user "nobody" does not exist');
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function waitUntilReady(url: string, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`postgres exited during start-up:\n${tail(logFile)}`);
    const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('select 1');
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`postgres did not accept connections: ${String(err)}\n${tail(logFile)}`);
    } finally {
      await client.end().catch(() => undefined);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts a durable throwaway cluster (initdb into a temp dir; as root, runs as `nobody`). */
export async function startDurableCluster(): Promise<BenchPostgres> {
  const { binDir, version } = findPgBinDir();
  const dir = await mkdtemp(join(tmpdir(), 'tasker-bench-pg-'));
  const ids = process.getuid?.() === 0 ? unprivilegedIds() : null;
  if (ids) await chown(dir, ids.uid, ids.gid);
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'postgres.log');
  let child: ChildProcess | null = null;
  try {
    const initdb = spawnSync(
      join(binDir, 'initdb'),
      ['-D', dataDir, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-instructions'],
      { encoding: 'utf8', ...(ids ?? {}) },
    );
    if (initdb.status !== 0) throw new Error(`initdb failed:\n${initdb.stderr || initdb.stdout || String(initdb.error)}`);
    const port = await freeLoopbackPort();
    const logFd = openSync(logFile, 'a');
    if (ids) await chown(logFile, ids.uid, ids.gid);
    const settings = Object.entries(CLUSTER_SETTINGS).flatMap(([k, v]) => ['-c', `${k}=${v}`]);
    child = spawn(join(binDir, 'postgres'), ['-D', dataDir, '-k', dir, '-p', String(port), ...settings], {
      stdio: ['ignore', logFd, logFd],
      ...(ids ?? {}),
    });
    closeSync(logFd);
    const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
    await waitUntilReady(url, child, logFile);
    const running = child;
    return {
      url,
      owned: true,
      postmasterPid: running.pid ?? null,
      logFile,
      dataDir,
      description: `PostgreSQL ${version} (throwaway cluster in ${dir}, port ${port}, fsync on)`,
      async stop() {
        running.kill('SIGINT');
        if (!(await exited(running, 30_000))) {
          running.kill('SIGKILL');
          await exited(running, 5_000);
        }
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    if (child) {
      child.kill('SIGKILL');
      await exited(child, 5_000);
    }
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
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
