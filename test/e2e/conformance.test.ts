/**
 * The client conformance suite (clients/conformance/README.md): one real Tasker on
 * PostgreSQL, and for each language its conformance worker as a separate process,
 * run through every scenario of `clients/conformance/scenarios/`. Tasks are driven
 * through the gRPC TaskService / TemplateService / AdminService with the grpc-js
 * clients generated in src/gen. A failing scenario prints its problems, the task's
 * steps, the worker's recent stdout events and the tail of its stderr.
 */
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningTasker } from '../../src/app.js';
import { startTasker } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import type { TemplateDefaults } from '../../src/domain/template-document.js';
import { ConformanceApi } from '../../clients/conformance/runner/api.js';
import { checkScenario, describeTask } from '../../clients/conformance/runner/checks.js';
import { runScenario } from '../../clients/conformance/runner/run-scenario.js';
import { LANGUAGES, loadScenarios, resolveScenario } from '../../clients/conformance/runner/scenario.js';
import type { Language } from '../../clients/conformance/runner/scenario.js';
import { WORKER_COMMANDS, WorkerProcess, workerAvailable } from '../../clients/conformance/runner/worker-process.js';
import { createPostgresTestDatabase } from '../support/databases.js';
import type { TestDatabase } from '../support/databases.js';
import { repoRoot } from '../support/paths.js';
import { TOKENS } from './api-client.js';

const CONFORMANCE_DIR = join(repoRoot, 'clients/conformance');
const scenarios = loadScenarios(join(CONFORMANCE_DIR, 'scenarios'));
/** TASKER_CONCURRENCY of every conformance worker; the credit scenario depends on it. */
const WORKER_CONCURRENCY = 3;
/** How long SIGTERM may take before SIGKILL. */
const STOP_GRACE_MS = 20_000;

/** What a failure report shows about the worker. */
function workerReport(worker: WorkerProcess, eventsFrom = 0): string {
  const events = worker.events.slice(eventsFrom).map((e) => `  ${JSON.stringify(e)}`);
  const stray = worker.strayStdout.slice(-10).map((l) => `  ${l}`);
  return [
    `worker pid ${worker.pid}${worker.exit ? ` exited ${JSON.stringify(worker.exit)}` : ' running'}`,
    `stdout events:\n${events.join('\n') || '  (none)'}`,
    ...(stray.length ? [`stdout lines that are not events:\n${stray.join('\n')}`] : []),
    `stderr tail:\n${worker.stderrTail(40) || '  (empty)'}`,
  ].join('\n');
}

describe('client conformance against a real server (PostgreSQL)', () => {
  let target: TestDatabase;
  let tasker: RunningTasker;
  let api: ConformanceApi;
  let defaults: TemplateDefaults;

  beforeAll(async () => {
    target = await createPostgresTestDatabase();
    const config = loadConfig({
      env: { TASKER_ENV: 'test' },
      overrides: {
        server: { host: '127.0.0.1', port: 0, shutdown_grace_ms: 1000 },
        database: { url: target.url, pool_size: 8 },
        engine: { poll_interval_ms: 200 },
        templates: { register_on_start: false },
      },
    });
    tasker = await startTasker(config, pino({ level: 'silent' }));
    api = new ConformanceApi(tasker.address, { client: TOKENS.client, admin: TOKENS.admin });
    const r = config.engine.default_retry;
    defaults = { retry: { maxAttempts: r.max_attempts, backoff: r.backoff, baseMs: r.base_ms, maxMs: r.max_ms, jitter: r.jitter } };
  });

  afterAll(async () => {
    api?.close();
    await tasker?.stop();
    await target?.close();
  });

  it('has the scenario set of clients/conformance/README.md', () => {
    expect(scenarios.map((s) => s.name).sort()).toEqual(
      [
        'cancel-mid-step', 'credit', 'dag-diamond', 'dag-linear', 'dag-mixed', 'dag-tree', 'duplicate-report',
        'handler-exception', 'permanent-failure', 'progress', 'reconnect-with-handle', 'retry-then-success',
      ].sort(),
    );
  });

  describe.each(LANGUAGES)('%s client', (language: Language) => {
    if (!workerAvailable(repoRoot, language)) {
      it.skip(`skipped: ${WORKER_COMMANDS[language].file} does not exist yet`, () => {});
      return;
    }
    const prefix = `conformance.${language}`;
    let worker: WorkerProcess;

    beforeAll(async () => {
      worker = new WorkerProcess({
        root: repoRoot,
        language,
        address: tasker.address,
        token: TOKENS.worker,
        name: `conformance-${language}`,
        prefix,
        concurrency: WORKER_CONCURRENCY,
      });
      try {
        await worker.waitForEvent((e) => e.event === 'ready', { timeoutMs: 45_000, what: 'the ready event' });
      } catch (err) {
        throw new Error(`${language} conformance worker did not become ready: ${(err as Error).message}\n${workerReport(worker)}`);
      }
    }, 60_000);

    afterAll(async () => {
      // Normally already stopped by the last test; this only cleans up after a failure.
      await worker?.stop(STOP_GRACE_MS);
    }, STOP_GRACE_MS + 5_000);

    it.each(scenarios)('$name', async (doc) => {
      if (worker.exit) throw new Error(`the ${language} worker is not running\n${workerReport(worker)}`);
      const scenario = resolveScenario(doc, language);
      const eventsFrom = worker.events.length;
      const { observation } = await runScenario(
        { api, worker, prefix, workerConcurrency: WORKER_CONCURRENCY, templatesDir: join(CONFORMANCE_DIR, 'templates'), defaults },
        scenario,
      );
      const problems = checkScenario(scenario, observation);
      const report = `${language} / ${scenario.name}: ${scenario.description.trim()}\n${describeTask(observation.task)}\n${workerReport(worker, eventsFrom)}`;
      expect(problems, report).toEqual([]);
    }, 150_000);

    it('stops gracefully on SIGTERM: prints stopped, exits 0, wrote only event lines on stdout', async () => {
      const exit = await worker.stop(STOP_GRACE_MS);
      const report = workerReport(worker);
      expect(exit, report).toEqual({ code: 0, signal: null, killed: false });
      expect(worker.events.at(-1), report).toEqual({ event: 'stopped' });
      expect(worker.strayStdout, report).toEqual([]);
    }, STOP_GRACE_MS + 5_000);
  });
});
