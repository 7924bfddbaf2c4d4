/**
 * `sessions`: 1,000 connected worker sessions (default) that only heartbeat, opened
 * by a few swarm processes (default 2; bench/workers/session-swarm.ts) whose
 * sessions share one HTTP/2 connection each. After every session is welcomed, the
 * server's RSS is sampled every second and its CPU (and PostgreSQL's) measured over
 * 30 s (default). With `--heap`, heap snapshots of the server before the sessions
 * connect and once they are connected show what they added, by constructor.
 */
import { sql } from 'kysely';
import type { ScenarioResult } from '../lib/report.js';
import { heapGrowth } from '../lib/heap-snapshot.js';
import type { HeapGrowth } from '../lib/heap-snapshot.js';
import { checkTarget } from '../lib/report.js';
import { peakRssMiB, rssMiB } from '../lib/proc-stats.js';
import type { Stack } from '../lib/stack.js';
import { round } from '../lib/stats.js';

const IDLE_HANDLER = 'bench.idle';

const mib = (bytes: number): string => (bytes / 1024 / 1024).toFixed(1);

async function activeSessions(stack: Stack): Promise<number> {
  const { rows } = await sql<{ n: string }>`
    select count(*) as n from worker_sessions where state = 'active' and connected`.execute(stack.engine.database.db);
  return Number(rows[0]?.n ?? 0);
}

/** Runs the scenario. `size` = sessions; `--workers` = swarm processes; `--duration` = seconds observed. */
export async function sessions(stack: Stack): Promise<ScenarioResult> {
  const { options } = stack.ctx;
  const total = options.size ?? (options.smoke ? 20 : 1_000);
  const processes = Math.min(total, options.workers ?? 2);
  const seconds = options.duration ?? (options.smoke ? 3 : 30);
  const pid = stack.server.pid;
  const heapBefore = options.heap ? await stack.server.heapSnapshot() : null;
  const rssBefore = rssMiB(pid);
  const perProcess = Array.from({ length: processes }, (_, i) => Math.floor(total / processes) + (i < total % processes ? 1 : 0));
  const connectStarted = performance.now();
  const swarms = await Promise.all(
    perProcess.map((n) =>
      stack.startWorkers('node', 1, {
        script: 'session-swarm.ts',
        handlers: [IDLE_HANDLER],
        concurrency: 1,
        env: { BENCH_SESSIONS: String(n) },
        startTimeoutMs: 180_000,
      }),
    ),
  ).then((lists) => lists.flat());
  const connectMs = performance.now() - connectStarted;
  const connected = await activeSessions(stack);
  stack.ctx.log(`${connected} sessions active after ${Math.round(connectMs)} ms; observing ${seconds} s`);
  const rssConnected = rssMiB(pid);
  let heap: HeapGrowth | null = null;
  if (heapBefore) {
    heap = heapGrowth(heapBefore, await stack.server.heapSnapshot());
    stack.ctx.log(`JS heap ${mib(heap.beforeBytes)} -> ${mib(heap.afterBytes)} MiB; grew most (bytes, objects, kind):`);
    for (const e of heap.top.slice(0, 15)) stack.ctx.log(`  ${(e.bytes / 1024).toFixed(0).padStart(7)} KiB ${String(e.count).padStart(7)}  ${e.name}`);
  }
  const samples: number[] = [];
  await stack.resetDbStats();
  const cpu = stack.cpuWindow(swarms);
  const started = performance.now();
  for (let s = 0; s < seconds; s++) {
    await new Promise((r) => setTimeout(r, 1000));
    const rss = rssMiB(pid);
    if (rss !== null) samples.push(rss);
  }
  const use = cpu.end(performance.now() - started);
  stack.server.assertRunning();
  const { statements, wal } = await stack.dbStats();
  const stillConnected = await activeSessions(stack);
  const swarmRss = swarms.map((w) => rssMiB(w.pid) ?? 0).reduce((a, b) => a + b, 0);
  const peak = peakRssMiB(pid);
  const maxSampled = samples.length ? Math.max(...samples) : null;
  await stack.stopWorkers(swarms);
  return {
    scenario: 'sessions',
    sizes: { sessions: total, swarmProcesses: processes, observedSeconds: seconds },
    figures: [
      { name: 'sessions active (after connect / after window)', value: `${connected} / ${stillConnected}` },
      { name: 'time to welcome every session', value: round(connectMs, 0), unit: 'ms' },
      { name: 'server RSS before sessions', value: round(rssBefore, 1), unit: 'MiB' },
      { name: 'server RSS with sessions connected', value: round(rssConnected, 1), unit: 'MiB' },
      { name: 'server RSS max over the window (1 s samples)', value: round(maxSampled, 1), unit: 'MiB' },
      { name: 'server peak RSS (VmHWM, whole life)', value: round(peak, 1), unit: 'MiB' },
      { name: 'server CPU over the window', value: round(use.server.percentOfCore, 1), unit: '% of a core' },
      { name: 'PostgreSQL CPU over the window', value: round(use.postgres.percentOfCore, 1), unit: '% of a core' },
      { name: 'swarm processes CPU over the window', value: round(use.workers.percentOfCore, 1), unit: '% of a core' },
      { name: 'swarm processes RSS (sum)', value: round(swarmRss, 1), unit: 'MiB' },
      ...(heap
        ? [
            { name: 'server JS heap before / with sessions (snapshots)', value: `${mib(heap.beforeBytes)} / ${mib(heap.afterBytes)}`, unit: 'MiB' },
            { name: 'server JS heap per session', value: round((heap.afterBytes - heap.beforeBytes) / 1024 / total, 1), unit: 'KiB' },
          ]
        : []),
    ],
    targets: [checkTarget('<= 300 MB server RSS with 1,000 sessions', round(Math.max(maxSampled ?? 0, rssConnected ?? 0), 1), 'MiB', 300, 'max')],
    notes: [
      'heartbeat interval is the server default (workers.heartbeat_interval_ms = 5000), so ~sessions/5 heartbeats per second, each renewing the session (and its leases) in the database',
      'RSS includes the tsx loader the server runs under (node --import tsx), as started by the harness',
      ...(heap ? ['--heap: taking the snapshots grows the server RSS; read the RSS figures from a run without --heap'] : []),
    ],
    details: { rssSamplesMiB: samples, cpu: use, connectMs, statements, wal, heap },
  };
}
