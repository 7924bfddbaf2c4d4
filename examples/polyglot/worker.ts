/**
 * Node worker of the polyglot example: the `score` step.
 *
 *     node --import tsx examples/polyglot/worker.ts
 *
 * Reads TASKER_ADDRESS (default 127.0.0.1:50051) and TASKER_TOKEN (unset when the
 * server runs with auth disabled). Prints `ready <session id>` on stdout once
 * connected; warnings go to stderr. SIGTERM stops it gracefully.
 */
import { Worker } from '../../clients/node/src/index.js';
import type { Step } from '../../clients/node/src/index.js';

const LANGUAGE = 'node';

/** The language of every ancestor result the step received, by step name. */
function languagesSeen(step: Step): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(step.ancestorResults)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, result]) => [name, (result as { language?: unknown }).language]),
  );
}

const worker = new Worker({
  address: process.env.TASKER_ADDRESS || '127.0.0.1:50051',
  token: process.env.TASKER_TOKEN || undefined,
  name: 'polyglot-node',
  concurrency: 2,
  labels: { example: 'polyglot', language: LANGUAGE },
});

// Scores the readings `extract` (Python) produced against the task's threshold.
worker.handle('polyglot.node.score', (step) => {
  const { values } = step.ancestorResults.extract as { values: number[] };
  const threshold = Number(step.context.threshold);
  const mean = values.reduce((sum, v) => sum + v, 0) / values.length;
  return {
    language: LANGUAGE,
    mean: Math.round(mean * 100) / 100,
    above_threshold: values.filter((v) => v > threshold).length,
    saw: languagesSeen(step),
  };
});

worker.on('ready', (info) => process.stdout.write(`ready ${info.sessionId}\n`));
let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) process.exit(1);
    stopping = true;
    void worker.stop({ reason: signal }).then(() => process.exit(0));
  });
}
await worker.start();
