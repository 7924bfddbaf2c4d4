/**
 * A throwaway PostgreSQL cluster: initdb into a temp dir, start `postgres` on a free
 * loopback port, stop it and delete everything at teardown. initdb and postgres
 * refuse to run as root, so as root they run as `nobody`. The test run uses it with
 * durability off (the default settings below); the bench (bench/lib/postgres.ts)
 * passes its own settings with durability on.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, openSync, closeSync, readdirSync, readFileSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/** A running throwaway cluster. */
export interface PgCluster {
  /** Superuser URL (user `postgres`, database `postgres`, trust auth). */
  readonly adminUrl: string;
  /** e.g. "PostgreSQL 15 (throwaway cluster in /tmp/tasker-pg-x1y2, port 45678)". */
  readonly description: string;
  /** The postmaster's pid. */
  readonly pid: number | null;
  readonly dataDir: string;
  /** The server log (postgres's stdout and stderr). */
  readonly logFile: string;
  stop(): Promise<void>;
}

/** Options of {@link startPgCluster}. */
export interface PgClusterOptions {
  /** Server settings (`-c key=value`). Default {@link TEST_SETTINGS}. */
  readonly settings?: Readonly<Record<string, string>>;
  /** initdb syncs its files to disk (for a durable cluster). Default false. */
  readonly syncInitdb?: boolean;
  /** Temp directory name prefix. Default `tasker-pg-`. */
  readonly prefix?: string;
  /** Appended to the description, e.g. ", fsync on". */
  readonly label?: string;
}

/** The test run's settings: nothing is made durable, so tests run at memory speed. */
export const TEST_SETTINGS: Readonly<Record<string, string>> = {
  listen_addresses: '127.0.0.1',
  fsync: 'off',
  full_page_writes: 'off',
  synchronous_commit: 'off',
  max_connections: '300',
};

const PG_ROOT = '/usr/lib/postgresql';

/** The `bin` directory of the highest PostgreSQL version installed under /usr/lib/postgresql. */
export function findPgBinDir(): { binDir: string; version: string } {
  const versions = existsSync(PG_ROOT)
    ? readdirSync(PG_ROOT)
        .filter((v) => /^\d+$/.test(v) && existsSync(join(PG_ROOT, v, 'bin', 'postgres')))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  const version = versions[0];
  if (!version) {
    throw new Error(
      `no PostgreSQL server binaries under ${PG_ROOT}/*/bin: install postgresql (apt-get install postgresql) ` +
        'or set TASKER_TEST_DATABASE_URL to a server you own',
    );
  }
  return { binDir: join(PG_ROOT, version, 'bin'), version };
}

function unprivilegedIds(): { uid: number; gid: number } {
  const uid = spawnSync('id', ['-u', 'nobody'], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', 'nobody'], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) throw new Error('running as root but user "nobody" does not exist');
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

async function freeLoopbackPort(): Promise<number> {
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

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function waitUntilReady(url: string, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`postgres exited during start-up:\n${tail(logFile)}`);
    }
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

function waitForExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Creates and starts a cluster; rejects (after cleaning up) with initdb's or postgres's own log. */
export async function startPgCluster(options: PgClusterOptions = {}): Promise<PgCluster> {
  const { binDir, version } = findPgBinDir();
  const dir = await mkdtemp(join(tmpdir(), options.prefix ?? 'tasker-pg-'));
  const ids = process.getuid?.() === 0 ? unprivilegedIds() : null;
  if (ids) await chown(dir, ids.uid, ids.gid);
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'postgres.log');
  let child: ChildProcess | null = null;
  try {
    const initdb = spawnSync(
      join(binDir, 'initdb'),
      ['-D', dataDir, '-A', 'trust', '-U', 'postgres', ...(options.syncInitdb ? [] : ['--no-sync']), '-E', 'UTF8', '--locale=C', '--no-instructions'],
      { encoding: 'utf8', ...(ids ?? {}) },
    );
    if (initdb.status !== 0) throw new Error(`initdb failed:\n${initdb.stderr || initdb.stdout || String(initdb.error)}`);
    const port = await freeLoopbackPort();
    const logFd = openSync(logFile, 'a');
    if (ids) await chown(logFile, ids.uid, ids.gid);
    const settings = Object.entries(options.settings ?? TEST_SETTINGS).flatMap(([k, v]) => ['-c', `${k}=${v}`]);
    child = spawn(join(binDir, 'postgres'), ['-D', dataDir, '-k', dir, '-p', String(port), ...settings], {
      stdio: ['ignore', logFd, logFd],
      ...(ids ?? {}),
    });
    closeSync(logFd);
    const adminUrl = `postgres://postgres@127.0.0.1:${port}/postgres`;
    await waitUntilReady(adminUrl, child, logFile);
    const running = child;
    return {
      adminUrl,
      description: `PostgreSQL ${version} (throwaway cluster in ${dir}, port ${port}${options.label ?? ''})`,
      pid: running.pid ?? null,
      dataDir,
      logFile,
      async stop() {
        running.kill('SIGINT'); // fast shutdown: disconnect clients, no checkpoint wait beyond need
        if (!(await waitForExit(running, 30_000))) {
          running.kill('SIGKILL');
          await waitForExit(running, 5_000);
        }
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    if (child) {
      child.kill('SIGKILL');
      await waitForExit(child, 5_000);
    }
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
