/**
 * A drain phase, the core of `throughput` and `polyglot`: create a backlog of tasks
 * (engine-level, before any worker is connected), start worker processes, wait until
 * every task is complete, and measure steps/s from the database (first
 * `step.enqueued` to last `step.completed`) with the CPU of the server, PostgreSQL and
 * the workers over the same run.
 */
import type { CpuWindow } from '../lib/proc-stats.js';
import { runWindow, waitForTasks } from '../lib/db-metrics.js';
import type { RunWindow, StatementStat } from '../lib/db-metrics.js';
import { createTasks } from '../lib/engine.js';
import type { Stack } from '../lib/stack.js';
import { round } from '../lib/stats.js';
import type { WorkerLanguage } from '../lib/worker-process.js';

/** Options of {@link drainPhase}. */
export interface DrainOptions {
  /** Template name (registered beforehand in `namespace`). */
  readonly template: string;
  /** Namespace of the template; default `stack.namespace`. */
  readonly namespace?: string;
  readonly tasks: number;
  readonly stepsPerTask: number;
  readonly language: WorkerLanguage;
  readonly workers: number;
  readonly concurrency: number;
  /** Creations in flight at once. Default 16. */
  readonly createConcurrency?: number;
  /** How long the drain may take. */
  readonly timeoutMs: number;
}

/** What a drain phase measured. */
export interface DrainResult {
  readonly template: string;
  readonly language: WorkerLanguage;
  readonly tasks: number;
  readonly steps: number;
  readonly createMs: number;
  readonly createdPerSecond: number;
  readonly window: RunWindow;
  /** Harness wall time from starting the workers to seeing every task complete. */
  readonly wallMs: number;
  readonly cpu: Record<'server' | 'postgres' | 'workers', CpuWindow>;
  /** CPU ms per 1,000 completed steps. */
  readonly cpuMsPer1kSteps: Record<'server' | 'postgres' | 'workers', number | null>;
  /** CPU ms over the DB window, as percent of one core. */
  readonly cpuPercentOfWindow: Record<'server' | 'postgres' | 'workers', number | null>;
  readonly statements: StatementStat[] | null;
  readonly wal: { records: number; bytes: number; syncs: number; writes: number } | null;
  readonly workerReports: unknown[];
}

/** Runs one drain phase; see the file comment. */
export async function drainPhase(stack: Stack, o: DrainOptions): Promise<DrainResult> {
  const { engine, ctx } = stack;
  const namespace = o.namespace ?? stack.namespace;
  ctx.log(`creating ${o.tasks} ${o.template} tasks (engine-level, ${o.createConcurrency ?? 16} in flight)`);
  const created = await createTasks(engine, { namespace, name: o.template }, o.tasks, o.createConcurrency ?? 16);
  ctx.log(`created in ${Math.round(created.wallMs)} ms (${Math.round(created.perSecond)} tasks/s); starting ${o.workers} ${o.language} worker(s)`);
  await stack.resetDbStats();
  const serverAndDb = stack.cpuWindow();
  const started = performance.now();
  const workers = await stack.startWorkers(o.language, o.workers, { concurrency: o.concurrency });
  const workerCpu = stack.cpuWindow(workers);
  const workersReadyAt = performance.now();
  await waitForTasks(engine.database.db, { namespace, name: o.template, expected: o.tasks, timeoutMs: o.timeoutMs, check: () => stack.server.assertRunning() });
  const finished = performance.now();
  const base = serverAndDb.end(finished - started);
  const cpu = { ...base, workers: workerCpu.end(finished - workersReadyAt).workers };
  const { statements, wal } = await stack.dbStats();
  const window = await runWindow(engine.database.db, namespace, o.template);
  const reports = await stack.stopWorkers(workers);
  const per = (ms: number | null) => (ms === null || window.completed === 0 ? null : round((ms / window.completed) * 1000, 1));
  const pct = (ms: number | null) => (ms === null || !window.windowMs ? null : round((ms / window.windowMs) * 100, 1));
  ctx.log(`${o.template}: ${window.completed} steps in ${window.windowMs} ms = ${Math.round(window.stepsPerSecond ?? 0)} steps/s`);
  return {
    template: o.template,
    language: o.language,
    tasks: o.tasks,
    steps: o.tasks * o.stepsPerTask,
    createMs: round(created.wallMs, 0) ?? 0,
    createdPerSecond: round(created.perSecond, 0) ?? 0,
    window,
    wallMs: round(finished - started, 0) ?? 0,
    cpu,
    cpuMsPer1kSteps: { server: per(cpu.server.cpuMs), postgres: per(cpu.postgres.cpuMs), workers: per(cpu.workers.cpuMs) },
    cpuPercentOfWindow: { server: pct(cpu.server.cpuMs), postgres: pct(cpu.postgres.cpuMs), workers: pct(cpu.workers.cpuMs) },
    statements,
    wal,
    workerReports: reports.map((r) => r.stopped),
  };
}
