/**
 * A no-op Node worker for the benchmarks: the Node SDK's `Worker` with every handler
 * in BENCH_HANDLERS returning null at once.
 *
 *   node --import tsx bench/workers/node-worker.ts
 *
 * Environment: BENCH_ADDRESS (host:port), BENCH_HANDLERS (comma-separated),
 * BENCH_CONCURRENCY (default 256), BENCH_NAME, BENCH_RECORD_FILE (when set, the
 * receive time of every assignment — when its handler was called, epoch ms with
 * sub-millisecond precision — is written there as JSON on exit), BENCH_MAX_RECEIVE_BYTES
 * (grpc-js `grpc.max_receive_message_length` of the channel; default grpc-js's 4 MiB).
 * Each reconnect is logged to stderr with the error that ended the stream.
 * Prints `{"event":"ready"}` once the session is welcomed and `{"event":"stopped",...}`
 * after a graceful stop on SIGTERM.
 */
import { writeFileSync } from 'node:fs';
import { Worker } from '../../clients/node/src/index.js';
import type { Step } from '../../clients/node/src/index.js';

const address = process.env.BENCH_ADDRESS ?? '127.0.0.1:50051';
const handlers = (process.env.BENCH_HANDLERS ?? 'bench.noop').split(',').filter(Boolean);
const concurrency = Number(process.env.BENCH_CONCURRENCY ?? '256');
const recordFile = process.env.BENCH_RECORD_FILE ?? '';

/** [stepId, attempt, receivedAtEpochMs] of every assignment, when recording. */
const received: [string, number, number][] = [];
let handled = 0;

const noop = (step: Step): null => {
  handled += 1;
  if (recordFile) received.push([step.id, step.attempt, performance.timeOrigin + performance.now()]);
  return null;
};

const maxReceive = Number(process.env.BENCH_MAX_RECEIVE_BYTES ?? '0');
const worker = new Worker({
  address,
  concurrency,
  name: process.env.BENCH_NAME ?? `bench-node-${process.pid}`,
  shutdownGraceMs: 10_000,
  ...(maxReceive > 0 ? { channelOptions: { 'grpc.max_receive_message_length': maxReceive } } : {}),
});
for (const h of handlers) worker.handle(h, noop);
worker.on('reconnecting', (info) => {
  console.error(JSON.stringify({ event: 'reconnecting', attempt: info.attempt, delayMs: info.delayMs, error: info.error?.message ?? null, code: info.error?.code ?? null }));
});

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await worker.stop({ graceMs: 10_000, reason: 'bench finished' });
  if (recordFile) writeFileSync(recordFile, JSON.stringify(received));
  process.stdout.write(`${JSON.stringify({ event: 'stopped', handled })}\n`, () => process.exit(0));
}
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());

await worker.start();
process.stdout.write(`${JSON.stringify({ event: 'ready', pid: process.pid })}\n`);
