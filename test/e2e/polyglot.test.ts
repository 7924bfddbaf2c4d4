/**
 * The polyglot example end to end: a real Tasker on PostgreSQL loading
 * config/templates/polyglot/, the example's Python, Ruby and Node worker processes
 * (examples/polyglot/worker.{py,rb,ts}), and one task of polyglot/polyglot_pipeline.
 * Each step must have run in its language and seen its ancestors' results, produced
 * by the other languages.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningTasker } from '../../src/app.js';
import { startTasker } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { TaskerClient } from '../../clients/node/src/index.js';
import { formatTask, runPolyglotTask, STEP_LANGUAGES } from '../../examples/polyglot/pipeline.js';
import type { ExampleWorker } from '../../examples/polyglot/processes.js';
import { startPolyglotWorkers } from '../../examples/polyglot/processes.js';
import { createPostgresTestDatabase } from '../support/databases.js';
import type { TestDatabase } from '../support/databases.js';
import { repoRoot } from '../support/paths.js';
import { TOKENS } from './api-client.js';

describe('polyglot example: one task through Python, Ruby and Node workers (PostgreSQL)', () => {
  let target: TestDatabase;
  let tasker: RunningTasker;
  let client: TaskerClient;
  let workers: ExampleWorker[] = [];

  const tails = () => workers.map((w) => `--- ${w.language} worker ---\n${w.tail()}`).join('\n');

  beforeAll(async () => {
    target = await createPostgresTestDatabase();
    const config = loadConfig({
      env: { TASKER_ENV: 'test' },
      overrides: {
        server: { host: '127.0.0.1', port: 0, shutdown_grace_ms: 1000 },
        database: { url: target.url, pool_size: 6 },
        engine: { poll_interval_ms: 200 },
        templates: { dirs: ['config/templates/polyglot'], register_on_start: true },
      },
    });
    tasker = await startTasker(config, pino({ level: 'silent' }));
    client = new TaskerClient({ address: tasker.address, token: TOKENS.client });
    workers = await startPolyglotWorkers({ root: repoRoot, address: tasker.address, token: TOKENS.worker });
  }, 90_000);

  afterAll(async () => {
    client?.close();
    await Promise.all(workers.map((w) => w.stop()));
    await tasker?.stop();
    await target?.close();
  }, 30_000);

  it('runs each step in its language, and each language receives the others’ results', async () => {
    const task = await runPolyglotTask(client, 60_000);
    const report = `${formatTask(task)}\n${tails()}`;
    expect(task.state, report).toBe('complete');
    expect(task.steps.map((s) => s.name), report).toEqual(Object.keys(STEP_LANGUAGES));
    for (const step of task.steps) {
      expect(step.result, `${step.name}\n${report}`).toMatchObject({ language: STEP_LANGUAGES[step.name] });
      expect(step.attempts, `${step.name}\n${report}`).toBe(1);
    }
    expect(task.results, report).toEqual({
      extract: { language: 'python', values: [3, 7, 8, 12, 19], count: 5, saw: {} },
      transform: { language: 'ruby', normalized: [0.158, 0.368, 0.421, 0.632, 1], min: 3, max: 19, saw: { extract: 'python' } },
      score: { language: 'node', mean: 9.8, above_threshold: 2, saw: { extract: 'python' } },
      report: {
        language: 'python',
        summary: '2 of 5 readings above 10; mean 9.8; range 3..19',
        saw: { extract: 'python', transform: 'ruby', score: 'node' },
      },
    });
  }, 90_000);

  it('stops every worker gracefully on SIGTERM', async () => {
    const exits = await Promise.all(workers.map(async (w) => [w.language, await w.stop()] as const));
    expect(Object.fromEntries(exits), tails()).toEqual({
      python: { code: 0, signal: null, killed: false },
      ruby: { code: 0, signal: null, killed: false },
      node: { code: 0, signal: null, killed: false },
    });
  }, 30_000);
});
