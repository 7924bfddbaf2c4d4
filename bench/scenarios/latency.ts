/**
 * `latency`: a 4-step linear workflow run one at a time (default 500 runs after 20
 * warm-up runs) by one Node worker process. The harness creates each task with
 * TaskService.CreateTask over gRPC (the Node SDK's TaskerClient) and watches it with
 * WatchTask until the update that makes it complete: that span is the end-to-end
 * latency. The worker records when each assignment reached its handler; with the
 * parent's `workflow_steps.completed_at` (server clock, same host) that gives each
 * hop parent committed -> child received.
 */
import { join } from 'node:path';
import { TaskerClient } from '../../clients/node/src/index.js';
import { stepTimings } from '../lib/db-metrics.js';
import { registerTemplate } from '../lib/engine.js';
import type { Figure, ScenarioResult } from '../lib/report.js';
import { checkTarget } from '../lib/report.js';
import type { Stack } from '../lib/stack.js';
import type { Summary } from '../lib/stats.js';
import { round, summarize } from '../lib/stats.js';
import { linear } from '../lib/templates.js';

const nowMs = () => performance.timeOrigin + performance.now();

function summaryFigures(label: string, s: Summary): Figure[] {
  return [
    { name: `${label} p50`, value: round(s.p50, 2), unit: 'ms' },
    { name: `${label} p95`, value: round(s.p95, 2), unit: 'ms' },
    { name: `${label} p99`, value: round(s.p99, 2), unit: 'ms' },
  ];
}

/** One run seen from the client. */
interface ClientRun {
  readonly taskId: string;
  readonly startedAt: number;
  readonly createdAt: number;
  readonly completeSeenAt: number;
}

async function runOnce(client: TaskerClient, namespace: string, name: string): Promise<ClientRun> {
  const startedAt = nowMs();
  const { task } = await client.createTask({ namespace, name });
  const createdAt = nowMs();
  for await (const update of client.watchTask(task.taskId)) {
    if (update.kind !== 'task_state_changed') continue;
    if (update.toState === 'complete') return { taskId: task.taskId, startedAt, createdAt, completeSeenAt: nowMs() };
    if (update.toState !== 'in_progress' && update.toState !== 'pending') throw new Error(`task ${task.taskId} ended ${update.toState}`);
  }
  throw new Error(`WatchTask of ${task.taskId} ended before the task completed`);
}

/** Runs the scenario. `size` = measured runs. */
export async function latency(stack: Stack): Promise<ScenarioResult> {
  const { options } = stack.ctx;
  const runs = options.size ?? (options.smoke ? 10 : 500);
  const warmup = options.smoke ? 2 : 20;
  const doc = linear(stack.namespace, 4);
  await registerTemplate(stack.engine, doc);
  const recordFile = join(stack.ctx.outDir, 'latency-receipts.json');
  const [worker] = await stack.startWorkers('node', 1, { concurrency: options.concurrency ?? 16, recordFile });
  if (!worker) throw new Error('no worker started');
  const client = new TaskerClient({ address: stack.server.address, timeoutMs: 30_000 });
  const measured: ClientRun[] = [];
  try {
    for (let i = 0; i < warmup; i++) await runOnce(client, stack.namespace, doc.name);
    await stack.resetDbStats();
    const cpu = stack.cpuWindow([worker]);
    const started = performance.now();
    for (let i = 0; i < runs; i++) measured.push(await runOnce(client, stack.namespace, doc.name));
    const cpuUse = cpu.end(performance.now() - started);
    const { statements, wal } = await stack.dbStats();
    stack.ctx.log(`${runs} runs in ${Math.round(performance.now() - started)} ms`);
    const [stopped] = await stack.stopWorkers([worker]);
    const received = new Map<string, number>();
    for (const [stepId, attempt, at] of stopped?.received ?? []) if (attempt === 1 || !received.has(stepId)) received.set(stepId, at);
    const measuredIds = new Set(measured.map((r) => r.taskId));
    const steps = (await stepTimings(stack.engine.database.db, stack.namespace)).filter((s) => measuredIds.has(s.taskId));
    const byId = new Map(steps.map((s) => [s.stepId, s]));
    const hops: number[] = [];
    const rootDispatch: number[] = [];
    /** Where a hop's time goes: claim -> received, received -> completion applied, completion applied -> child claimed. */
    const claimToReceive: number[] = [];
    const receiveToApplied: number[] = [];
    const appliedToChildClaim: number[] = [];
    for (const s of steps) {
      const at = received.get(s.stepId);
      if (at === undefined) continue;
      if (s.enqueuedAt) claimToReceive.push(at - s.enqueuedAt.getTime());
      if (s.completedAt) receiveToApplied.push(s.completedAt.getTime() - at);
      if (s.parentIds.length === 0) {
        rootDispatch.push(at - s.taskCreatedAt.getTime());
        continue;
      }
      const parentDone = Math.max(...s.parentIds.map((p) => byId.get(p)?.completedAt?.getTime() ?? Number.NaN));
      if (Number.isFinite(parentDone)) hops.push(at - parentDone);
      if (Number.isFinite(parentDone) && s.enqueuedAt) appliedToChildClaim.push(s.enqueuedAt.getTime() - parentDone);
    }
    const taskDone = new Map(steps.map((s) => [s.taskId, s.taskCompletedAt?.getTime() ?? null]));
    const watchDelay = measured.map((r) => (taskDone.get(r.taskId) ? r.completeSeenAt - (taskDone.get(r.taskId) as number) : Number.NaN)).filter(Number.isFinite);
    const e2e = summarize(measured.map((r) => r.completeSeenAt - r.startedAt));
    const create = summarize(measured.map((r) => r.createdAt - r.startedAt));
    const hop = summarize(hops);
    const root = summarize(rootDispatch);
    const watch = summarize(watchDelay);
    return {
      scenario: 'latency',
      sizes: { runs, warmupRuns: warmup, stepsPerTask: 4 },
      figures: [
        ...summaryFigures('CreateTask -> complete seen by WatchTask', e2e),
        ...summaryFigures('CreateTask RPC', create),
        ...summaryFigures('task created -> root step received', root),
        ...summaryFigures('parent committed -> child received (hop)', hop),
        ...summaryFigures('task completed_at -> WatchTask update received', watch),
        { name: 'hop part: step claimed -> received by worker (p50)', value: round(summarize(claimToReceive).p50, 2), unit: 'ms' },
        { name: 'hop part: received -> completion applied (p50)', value: round(summarize(receiveToApplied).p50, 2), unit: 'ms' },
        { name: 'hop part: completion applied -> child claimed (p50)', value: round(summarize(appliedToChildClaim).p50, 2), unit: 'ms' },
        { name: 'server CPU during the runs', value: round(cpuUse.server.percentOfCore, 1), unit: '% of a core' },
        { name: 'PostgreSQL CPU during the runs', value: round(cpuUse.postgres.percentOfCore, 1), unit: '% of a core' },
      ],
      targets: [checkTarget('<= 10 ms p50 (CreateTask -> completion)', round(e2e.p50, 2), 'ms', 10, 'max')],
      notes: [
        'client and worker timestamps are epoch ms from performance.timeOrigin + performance.now(); server timestamps (created_at, completed_at) are the server clock at millisecond precision, taken before the commit',
        `hops counted: ${hop.count} of ${runs * 3}; root dispatches: ${root.count} of ${runs}`,
      ],
      details: {
        endToEnd: e2e,
        createRpc: create,
        rootDispatch: root,
        hop,
        hopParts: { claimToReceive: summarize(claimToReceive), receiveToApplied: summarize(receiveToApplied), appliedToChildClaim: summarize(appliedToChildClaim) },
        watchDelay: watch,
        cpu: cpuUse,
        statements,
        wal,
      },
    };
  } finally {
    client.close();
  }
}
