/**
 * Many idle worker sessions from one process, for the `sessions` benchmark: opens
 * BENCH_SESSIONS Node SDK `Worker`s (default 500), each serving BENCH_HANDLERS with
 * concurrency BENCH_CONCURRENCY (default 1); grpc-js shares one HTTP/2 connection
 * between them, so the sessions are streams multiplexed on it. They only heartbeat.
 *
 *   node --import tsx bench/workers/session-swarm.ts
 *
 * Prints `{"event":"ready","sessions":N,"connectMs":...}` once every session is
 * welcomed; stops them all on SIGTERM and prints `{"event":"stopped"}`.
 */
import { Worker, silentLogger } from '../../clients/node/src/index.js';

const address = process.env.BENCH_ADDRESS ?? '127.0.0.1:50051';
const handlers = (process.env.BENCH_HANDLERS ?? 'bench.idle').split(',').filter(Boolean);
const count = Number(process.env.BENCH_SESSIONS ?? '500');
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? '1');
const name = process.env.BENCH_NAME ?? `bench-swarm-${process.pid}`;

const workers = Array.from({ length: count }, (_, i) => {
  const worker = new Worker({ address, concurrency, name: `${name}-${i + 1}`, logger: silentLogger });
  for (const h of handlers) worker.handle(h, () => null);
  return worker;
});

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await Promise.allSettled(workers.map((w) => w.stop({ graceMs: 0, reason: 'bench finished' })));
  process.stdout.write(`${JSON.stringify({ event: 'stopped', sessions: count })}\n`, () => process.exit(0));
}
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());

const started = performance.now();
await Promise.all(workers.map((w) => w.start()));
const connectMs = Math.round(performance.now() - started);
process.stdout.write(`${JSON.stringify({ event: 'ready', pid: process.pid, sessions: count, connectMs })}\n`);
