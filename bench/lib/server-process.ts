/**
 * The Tasker server under test, as a separate process exactly as an operator runs
 * it (`node --import tsx src/cli/main.ts serve`), configured only through TASKER_*
 * variables: the bench database, port 0 (the chosen port is read from the
 * "Tasker listening on" log line), auth off, JSON logs at `info`. With `cpuProfDir`
 * it runs under `node --cpu-prof`, and the profile is written when it exits.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { repoRoot } from './paths.js';

/** Options of {@link startServerProcess}. */
export interface ServerProcessOptions {
  readonly databaseUrl: string;
  /** Where the server's stdout and stderr go. */
  readonly logFile: string;
  /** Run under `node --cpu-prof` and write the profile here on exit. */
  readonly cpuProfDir?: string | null;
  /** Allow {@link ServerProcess.heapSnapshot}, writing the snapshots here. */
  readonly heapSnapshotDir?: string | null;
  /** Extra TASKER_* variables (e.g. TASKER_DATABASE_POOL_SIZE). */
  readonly env?: Readonly<Record<string, string>>;
  /** How long start-up may take. Default 60 s. */
  readonly startTimeoutMs?: number;
}

/** A running server process. */
export interface ServerProcess {
  readonly pid: number;
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  /** The TASKER_* variables it was started with (the database URL redacted). */
  readonly env: Readonly<Record<string, string>>;
  /** Throws if the server exited (it should run until `stop()`): a crash ends the scenario at once instead of at its timeout. */
  assertRunning(): void;
  /** Writes a V8 heap snapshot (SIGUSR2; only with `heapSnapshotDir`) and returns its file once complete. */
  heapSnapshot(): Promise<string>;
  /** SIGTERM, wait for the graceful stop; returns the .cpuprofile written, if profiling. */
  stop(): Promise<string | null>;
}

/** Variables every bench server gets, before `options.env`. */
export const BASE_SERVER_ENV: Readonly<Record<string, string>> = {
  TASKER_ENV: 'development',
  TASKER_SERVER_HOST: '127.0.0.1',
  TASKER_SERVER_PORT: '0',
  TASKER_AUTH_ENABLED: 'false',
  TASKER_LOG_PRETTY: 'false',
  TASKER_LOG_LEVEL: 'info',
  TASKER_SERVER_SHUTDOWN_GRACE_MS: '2000',
};

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

/** TASKER_* variables inherited from the environment would reconfigure the server under test: drop them. */
function cleanEnvironment(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('TASKER_')) env[k] = v;
  return env;
}

/** Starts the server and resolves once it logged its listening address. */
export async function startServerProcess(options: ServerProcessOptions): Promise<ServerProcess> {
  const taskerEnv = { ...BASE_SERVER_ENV, TASKER_DATABASE_URL: options.databaseUrl, ...(options.env ?? {}) };
  const nodeArgs: string[] = [];
  if (options.cpuProfDir) {
    await mkdir(options.cpuProfDir, { recursive: true });
    nodeArgs.push('--cpu-prof', '--cpu-prof-dir', options.cpuProfDir);
  }
  const heapDir = options.heapSnapshotDir ?? null;
  if (heapDir) {
    await mkdir(heapDir, { recursive: true });
    nodeArgs.push('--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${heapDir}`);
  }
  const child = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', 'src/cli/main.ts', 'serve'], {
    cwd: repoRoot,
    env: { ...cleanEnvironment(), ...taskerEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = createWriteStream(options.logFile);
  child.stderr?.pipe(log, { end: false });
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start within ${options.startTimeoutMs ?? 60_000} ms (log: ${options.logFile})`)), options.startTimeoutMs ?? 60_000);
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      log.write(`${line}\n`);
      if (!line.includes('Tasker listening on')) return;
      try {
        const parsed = JSON.parse(line) as { address?: string };
        if (parsed.address) {
          clearTimeout(timer);
          resolve(parsed.address);
        }
      } catch {
        // not a JSON line: keep reading
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`the server exited during start-up (code ${code}, signal ${signal}); log: ${options.logFile}`));
    });
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('the server process has no pid');
  let stopping = false;
  let exitedWith: string | null = null;
  child.once('exit', (code, signal) => {
    exitedWith = `code ${code}, signal ${signal}`;
  });
  const redacted = { ...taskerEnv, TASKER_DATABASE_URL: taskerEnv.TASKER_DATABASE_URL.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@') };
  return {
    pid,
    address,
    env: redacted,
    assertRunning() {
      if (exitedWith !== null && !stopping) throw new Error(`the server exited unexpectedly (${exitedWith}); log: ${options.logFile}`);
    },
    async heapSnapshot() {
      if (!heapDir) throw new Error('the server was started without heapSnapshotDir');
      const snapshots = async () => (await readdir(heapDir)).filter((f) => f.endsWith('.heapsnapshot'));
      const before = new Set(await snapshots());
      child.kill('SIGUSR2');
      // The snapshot is written by the server's main thread: done once the file stops growing.
      let last = -1;
      for (let i = 0; i < 1200; i++) {
        await new Promise((r) => setTimeout(r, 250));
        const file = (await snapshots()).find((f) => !before.has(f));
        if (!file) continue;
        const size = (await stat(join(heapDir, file))).size;
        if (size > 0 && size === last) return join(heapDir, file);
        last = size;
      }
      throw new Error('the server wrote no heap snapshot within 5 minutes');
    },
    async stop() {
      stopping = true;
      child.kill('SIGTERM');
      if (!(await exited(child, 30_000))) {
        child.kill('SIGKILL');
        await exited(child, 5_000);
      }
      await new Promise<void>((resolve) => log.end(resolve));
      if (!options.cpuProfDir) return null;
      const files = (await readdir(options.cpuProfDir)).filter((f) => f.endsWith('.cpuprofile') && f.includes(`.${pid}.`));
      return files[0] ? join(options.cpuProfDir, files[0]) : null;
    },
  };
}
