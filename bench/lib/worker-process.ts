/**
 * No-op worker processes (bench/workers/): Node, Ruby or Python, each one SDK
 * `Worker` with one session. Started with their settings in BENCH_* variables; ready
 * once they print `{"event":"ready"}`; stopped with SIGTERM (a graceful drain).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { repoRoot, workersDir } from './paths.js';

/** Languages with a bench worker. */
export type WorkerLanguage = 'node' | 'ruby' | 'python';

/** Options of {@link startWorkerProcess}. */
export interface WorkerProcessOptions {
  readonly language: WorkerLanguage;
  readonly address: string;
  readonly handlers: readonly string[];
  readonly concurrency: number;
  readonly name: string;
  /** stdout/stderr of the worker go here. */
  readonly logFile: string;
  /** Node only: record the receive time of every assignment into this file. */
  readonly recordFile?: string | null;
  /** Extra environment (e.g. BENCH_SESSIONS for the session swarm). */
  readonly env?: Readonly<Record<string, string>>;
  /** Node only: another script under bench/workers/ (default node-worker.ts). */
  readonly script?: string;
  readonly startTimeoutMs?: number;
}

/** A receive record: step id, attempt, epoch ms at which the handler was called. */
export type ReceiveRecord = [stepId: string, attempt: number, receivedAtMs: number];

/** A running worker process. */
export interface WorkerProcess {
  readonly pid: number;
  readonly language: WorkerLanguage;
  /** SIGTERM, wait for exit; returns the last JSON line it printed (`stopped`) and its receive records. */
  stop(): Promise<{ stopped: Record<string, unknown> | null; received: ReceiveRecord[] }>;
}

function command(o: WorkerProcessOptions): { file: string; args: string[]; env: Record<string, string> } {
  switch (o.language) {
    case 'node':
      return { file: process.execPath, args: ['--import', 'tsx', join(workersDir, o.script ?? 'node-worker.ts')], env: {} };
    case 'ruby':
      return { file: 'ruby', args: ['-I', join(repoRoot, 'clients/ruby/lib'), join(workersDir, 'ruby_worker.rb')], env: {} };
    case 'python':
      // Debian's python3 has grpcio; a pyenv python3 on PATH may not.
      return { file: '/usr/bin/python3', args: [join(workersDir, 'python_worker.py')], env: { PYTHONPATH: join(repoRoot, 'clients/python') } };
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

/** Starts a worker and resolves once its session is welcomed. */
export async function startWorkerProcess(o: WorkerProcessOptions): Promise<WorkerProcess> {
  const { file, args, env } = command(o);
  const child = spawn(file, args, {
    cwd: repoRoot,
    env: {
      ...process.env,
      ...env,
      BENCH_ADDRESS: o.address,
      BENCH_HANDLERS: o.handlers.join(','),
      BENCH_CONCURRENCY: String(o.concurrency),
      BENCH_NAME: o.name,
      ...(o.recordFile ? { BENCH_RECORD_FILE: o.recordFile } : {}),
      ...(o.env ?? {}),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = createWriteStream(o.logFile);
  child.stderr?.pipe(log, { end: false });
  let last: Record<string, unknown> | null = null;
  const lines = createInterface({ input: child.stdout! });
  const ready = new Promise<void>((resolve, reject) => {
    const limit = o.startTimeoutMs ?? 60_000;
    const timer = setTimeout(() => reject(new Error(`${o.language} worker ${o.name} not ready within ${limit} ms (log: ${o.logFile})`)), limit);
    lines.on('line', (line) => {
      log.write(`${line}\n`);
      try {
        last = JSON.parse(line) as Record<string, unknown>;
      } catch {
        return;
      }
      if (last?.event === 'ready') {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${o.language} worker ${o.name} exited (code ${code}, signal ${signal}); log: ${o.logFile}`));
    });
  });
  const linesClosed = new Promise<void>((resolve) => lines.once('close', resolve));
  try {
    await ready;
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error('worker process has no pid');
  return {
    pid,
    language: o.language,
    async stop() {
      child.kill('SIGTERM');
      if (!(await exited(child, 30_000))) {
        child.kill('SIGKILL');
        await exited(child, 5_000);
      }
      await linesClosed;
      await new Promise<void>((resolve) => log.end(resolve));
      const received: ReceiveRecord[] = o.recordFile && existsSync(o.recordFile) ? (JSON.parse(readFileSync(o.recordFile, 'utf8')) as ReceiveRecord[]) : [];
      return { stopped: last, received };
    },
  };
}
