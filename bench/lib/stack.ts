/**
 * What one scenario runs on: a fresh bench database, the harness's engine handle on
 * it, the Tasker server process, and the worker processes the scenario starts; plus
 * the measurements every scenario shares (CPU windows, statement statistics, the
 * server profile and auto_explain plans). `withStack` builds it and always tears it
 * down, in reverse, whatever the scenario threw.
 */
import { join } from 'node:path';
import type { CpuWindow } from './proc-stats.js';
import { startCpuWindow } from './proc-stats.js';
import type { ProfileSummary } from './cpu-profile.js';
import { summarizeCpuProfile } from './cpu-profile.js';
import type { StatementStat } from './db-metrics.js';
import { resetStatementStats, topStatements, walStats } from './db-metrics.js';
import type { BenchEngine } from './engine.js';
import { openBenchEngine } from './engine.js';
import type { PlanGroup } from './explain-log.js';
import { collectPlans, enableAutoExplain, logOffset } from './explain-log.js';
import type { BenchPostgres } from './postgres.js';
import { prepareScenarioDatabase, withClient } from './postgres.js';
import type { ServerProcess } from './server-process.js';
import { startServerProcess } from './server-process.js';
import type { WorkerLanguage, WorkerProcess, WorkerProcessOptions } from './worker-process.js';
import { startWorkerProcess } from './worker-process.js';
import { NOOP_HANDLER } from './templates.js';

/** Options every scenario shares (from the command line). */
export interface RunOptions {
  /** Scenario size (`--size`); null = the scenario's default. */
  readonly size: number | null;
  readonly smoke: boolean;
  /** Run the server under `node --cpu-prof` and summarize the profile. */
  readonly profile: boolean;
  /** Log the executed plan of every statement (auto_explain) and summarize the hot ones. */
  readonly explain: boolean;
  /** Node worker processes (`--workers`). */
  readonly workers: number | null;
  /** Concurrency of each worker (`--concurrency`). */
  readonly concurrency: number | null;
  /** TASKER_DATABASE_POOL_SIZE of the server (`--pool`). */
  readonly pool: number | null;
  /** Seconds (`--duration`, sessions). */
  readonly duration: number | null;
  /** Heap snapshots of the server (`--heap`, sessions). */
  readonly heap: boolean;
  /** The Node workers' gRPC receive limit (`--worker-receive-bytes`); null = grpc-js's default. */
  readonly workerReceiveBytes: number | null;
}

/** The run-wide parts a scenario gets. */
export interface RunContext {
  readonly runId: string;
  readonly postgres: BenchPostgres;
  readonly options: RunOptions;
  /** Directory for this run's logs and profiles. */
  readonly outDir: string;
  log(message: string): void;
}

/** A scenario's running stack. */
export interface Stack {
  readonly ctx: RunContext;
  /** The namespace this scenario's templates and tasks use. */
  readonly namespace: string;
  readonly databaseUrl: string;
  readonly engine: BenchEngine;
  readonly server: ServerProcess;
  /** Starts `count` worker processes of `language` serving the no-op handler; stopped with the stack. */
  startWorkers(language: WorkerLanguage, count: number, options?: Partial<WorkerProcessOptions>): Promise<WorkerProcess[]>;
  /** Stops workers early (the stack stops what is left). */
  stopWorkers(workers: readonly WorkerProcess[]): Promise<Awaited<ReturnType<WorkerProcess['stop']>>[]>;
  /** Starts a CPU window over the server, PostgreSQL and the given workers. */
  cpuWindow(workers?: readonly WorkerProcess[]): { end(wallMs: number): Record<'server' | 'postgres' | 'workers', CpuWindow> };
  /** Resets pg_stat_statements and WAL counters (own cluster only). */
  resetDbStats(): Promise<void>;
  /** Top statements and WAL counters since the last reset (own cluster only). */
  dbStats(): Promise<{ statements: StatementStat[] | null; wal: Awaited<ReturnType<typeof walStats>> }>;
}

/** What the stack found on teardown, for the result file. */
export interface StackExtras {
  profile: ProfileSummary | null;
  plans: PlanGroup[] | null;
  serverEnv: Readonly<Record<string, string>> | null;
  /** 1/5/15-minute load averages before and after the scenario: other work on the machine shows here. */
  loadAverage: { before: number[]; after: number[] } | null;
}

/**
 * Builds the stack for `scenario`, runs `fn`, and tears everything down. Fills
 * `extras` with the profile summary and plans when those were asked for.
 */
export async function withStack<T>(ctx: RunContext, scenario: string, extras: StackExtras, fn: (stack: Stack) => Promise<T>): Promise<T> {
  const dbName = `bench_${scenario.replace(/[^a-z0-9]/g, '_')}_${ctx.runId.replace(/[^0-9]/g, '')}`;
  const namespace = `bench_${scenario.replace(/[^a-z0-9]/g, '_')}_${ctx.runId.replace(/[^0-9]/g, '').slice(-9)}`;
  const databaseUrl = await prepareScenarioDatabase(ctx.postgres, dbName);
  const explain = ctx.options.explain && ctx.postgres.owned && ctx.postgres.logFile !== null;
  if (ctx.options.explain && !explain) ctx.log('--explain needs the throwaway cluster (its log): skipped');
  if (explain) await withClient(ctx.postgres.url, (c) => enableAutoExplain(c, dbName));
  const engine = await openBenchEngine(databaseUrl);
  const workers = new Set<WorkerProcess>();
  let server: ServerProcess | null = null;
  const explainFrom = explain && ctx.postgres.logFile ? logOffset(ctx.postgres.logFile) : 0;
  try {
    const env: Record<string, string> = {};
    if (ctx.options.pool) env.TASKER_DATABASE_POOL_SIZE = String(ctx.options.pool);
    server = await startServerProcess({
      databaseUrl,
      logFile: join(ctx.outDir, `${scenario}-server.log`),
      cpuProfDir: ctx.options.profile ? join(ctx.outDir, 'profiles') : null,
      heapSnapshotDir: ctx.options.heap ? join(ctx.outDir, 'heap') : null,
      env,
    });
    extras.serverEnv = server.env;
    ctx.log(`server pid ${server.pid} on ${server.address}`);
    const running = server;
    let workerSeq = 0;
    const stack: Stack = {
      ctx,
      namespace,
      databaseUrl,
      engine,
      server: running,
      async startWorkers(language, count, options = {}) {
        const receive = ctx.options.workerReceiveBytes;
        const env = { ...(receive && language === 'node' ? { BENCH_MAX_RECEIVE_BYTES: String(receive) } : {}), ...(options.env ?? {}) };
        const started = await Promise.all(
          Array.from({ length: count }, () => {
            const n = ++workerSeq;
            return startWorkerProcess({
              language,
              address: running.address,
              handlers: [NOOP_HANDLER],
              concurrency: 256,
              name: `bench-${language}-${n}`,
              logFile: join(ctx.outDir, `${scenario}-worker-${language}-${n}.log`),
              ...options,
              env,
            });
          }),
        );
        for (const w of started) workers.add(w);
        return started;
      },
      async stopWorkers(list) {
        for (const w of list) workers.delete(w);
        return Promise.all(list.map((w) => w.stop()));
      },
      cpuWindow(list = []) {
        return startCpuWindow({
          server: { kind: 'process', pid: running.pid },
          postgres: ctx.postgres.postmasterPid ? { kind: 'cluster', postmasterPid: ctx.postgres.postmasterPid } : null,
          workers: list.length ? { kind: 'processes', pids: list.map((w) => w.pid) } : null,
        });
      },
      async resetDbStats() {
        if (ctx.postgres.owned) await resetStatementStats(engine.database.db);
      },
      async dbStats() {
        if (!ctx.postgres.owned) return { statements: null, wal: null };
        return { statements: await topStatements(engine.database.db), wal: await walStats(engine.database.db) };
      },
    };
    return await fn(stack);
  } finally {
    await Promise.allSettled([...workers].map((w) => w.stop()));
    const profileFile = server ? await server.stop() : null;
    if (profileFile) {
      try {
        extras.profile = summarizeCpuProfile(profileFile);
      } catch (err) {
        ctx.log(`could not read the CPU profile ${profileFile}: ${String(err)}`);
      }
    }
    await engine.close();
    if (explain && ctx.postgres.logFile) extras.plans = collectPlans(ctx.postgres.logFile, explainFrom);
  }
}
