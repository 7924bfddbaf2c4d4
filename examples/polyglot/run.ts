/**
 * The polyglot example in one command (`npm run example:polyglot`): starts Tasker on
 * the embedded database (PGlite, in memory, auth disabled as in development) with the
 * template config/templates/polyglot/polyglot_pipeline.yaml, starts one Python, one
 * Ruby and one Node worker process, runs one task through all three languages, prints
 * each step's language and result, and stops everything. Exits 0 when the task
 * completed with every step in its language, 1 otherwise.
 *
 * Needs Ruby with ruby-grpc and Python with grpcio (Debian: ruby-grpc,
 * python3-grpcio, python3-protobuf; /usr/bin/python3 is used when present).
 */
import { fileURLToPath } from 'node:url';
import type { RunningTasker } from '../../src/app.js';
import { startExampleTasker } from '../embedded-tasker.js';
import { TaskerClient } from '../../clients/node/src/index.js';
import { formatTask, POLYGLOT_CONTEXT, runPolyglotTask, wrongLanguages } from './pipeline.js';
import type { ExampleWorker } from './processes.js';
import { startPolyglotWorkers } from './processes.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const say = (text: string): void => void process.stdout.write(`${text}\n`);

async function main(): Promise<number> {
  let tasker: RunningTasker | null = null;
  let workers: ExampleWorker[] = [];
  let client: TaskerClient | null = null;
  try {
    tasker = await startExampleTasker('config/templates/polyglot');
    say(`Tasker listening on ${tasker.address} (PGlite, in memory)`);
    workers = await startPolyglotWorkers({
      root,
      address: tasker.address,
      onLine: ({ language, text }) => say(`  [${language}] ${text}`),
    });
    say('python, ruby and node workers connected');
    client = new TaskerClient({ address: tasker.address });
    say(`running polyglot/polyglot_pipeline with ${JSON.stringify(POLYGLOT_CONTEXT)}`);
    const task = await runPolyglotTask(client);
    say(formatTask(task));
    const wrong = wrongLanguages(task);
    for (const problem of wrong) say(`  wrong language: ${problem}`);
    return task.state === 'complete' && wrong.length === 0 ? 0 : 1;
  } finally {
    client?.close();
    const exits = await Promise.all(workers.map(async (w) => [w.language, await w.stop()] as const));
    for (const [language, exit] of exits) if (exit.code !== 0) say(`${language} worker ended with ${JSON.stringify(exit)}`);
    await tasker?.stop();
    say('stopped');
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
