/**
 * The Node conformance worker (clients/node/conformance/worker.ts) as a real process
 * against a real Tasker (PostgreSQL, 127.0.0.1:0): it reports ready, runs the handler
 * catalog the conformance scenarios use, sees a cancellation, and stops gracefully on
 * SIGTERM.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { RunningTasker } from '../../src/app.js';
import { startTasker } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import { TaskerClient } from '../../clients/node/src/index.js';
import { createPostgresTestDatabase } from '../support/databases.js';
import type { TestDatabase } from '../support/databases.js';
import { repoRoot } from '../support/paths.js';

const NS = 'nodesdk';

describe('the Node conformance worker process (PostgreSQL)', () => {
  let target: TestDatabase;
  let tasker: RunningTasker;
  let client: TaskerClient;

  beforeAll(async () => {
    target = await createPostgresTestDatabase();
    const config = loadConfig({
      env: { TASKER_ENV: 'test' },
      overrides: {
        server: { host: '127.0.0.1', port: 0, shutdown_grace_ms: 1_000 },
        database: { url: target.url!, pool_size: 6 },
        workers: { heartbeat_interval_ms: 300, lease_ms: 3_000, session_ttl_ms: 60_000 },
        engine: { poll_interval_ms: 100, reaper_interval_ms: 100 },
        templates: { register_on_start: false },
      },
    });
    tasker = await startTasker(config, pino({ level: 'silent' }));
    client = new TaskerClient({ address: tasker.address, token: 'test-client-token' });
  });

  afterAll(async () => {
    client?.close();
    await tasker?.stop();
    await target?.close();
  });

  test('the conformance worker process: ready, runs the handler catalog, stops gracefully on SIGTERM', async () => {
    const child: ChildProcess = spawn(join(repoRoot, 'node_modules/.bin/tsx'), ['clients/node/conformance/worker.ts'], {
      cwd: repoRoot,
      env: {
        ...process.env,
        TASKER_ADDRESS: tasker.address,
        TASKER_TOKEN: 'test-worker-token',
        TASKER_WORKER_NAME: 'conformance-node-e2e',
        TASKER_HANDLER_PREFIX: 'conformance.node',
        TASKER_CONCURRENCY: '2',
        TASKER_LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const exited = once(child, 'exit');
    const events: Array<Record<string, unknown>> = [];
    const waiters: Array<() => void> = [];
    createInterface({ input: child.stdout! }).on('line', (line) => {
      events.push(JSON.parse(line) as Record<string, unknown>);
      waiters.splice(0).forEach((w) => w());
    });
    const nextEvent = async (name: string): Promise<Record<string, unknown>> => {
      for (;;) {
        const found = events.find((e) => e.event === name);
        if (found) return found;
        await new Promise<void>((r) => waiters.push(r));
      }
    };
    try {
      expect(await nextEvent('ready')).toMatchObject({ session_id: expect.any(String) });
      const handler = (name: string) => `conformance.node.${name}`;
      const once1 = { maxAttempts: 1 };
      await client.registerTemplate({
        namespace: NS,
        name: 'conformance_node',
        version: '1.0.0',
        identityStrategy: 'always_unique',
        steps: [
          { name: 'first', handler: handler('echo') },
          { name: 'second', handler: handler('echo'), dependsOn: ['first'] },
          { name: 'flaky', handler: handler('flaky'), handlerConfig: { fail_times: 1, retry_after_ms: 0 } },
          { name: 'progress', handler: handler('progress'), handlerConfig: { count: 2 } },
          { name: 'interrupt', handler: handler('interrupt') },
          { name: 'duplicate', handler: handler('duplicate') },
          { name: 'peak', handler: handler('concurrency'), handlerConfig: { sleep_ms: 50 } },
          { name: 'raise', handler: handler('raise'), retry: once1 },
          { name: 'permanent', handler: handler('permanent') },
        ],
      });
      const { task } = await client.createTask({ namespace: NS, name: 'conformance_node' });
      const done = await client.waitForTask(task.taskId, { timeoutMs: 30_000 });
      expect(done.state).toBe('error');
      expect(done.results).toEqual({
        first: { step: 'first', language: 'node', attempt: 1, ancestors: [], value: 1 },
        second: { step: 'second', language: 'node', attempt: 1, ancestors: ['first'], value: 2 },
        flaky: { attempt: 2 },
        progress: { count: 2 },
        interrupt: { resumed: true },
        duplicate: { ok: true },
        peak: { peak: expect.any(Number) },
      });
      expect((done.results.peak as { peak: number }).peak).toBeLessThanOrEqual(2);
      const step = (name: string) => done.steps.find((s) => s.name === name)!;
      expect(step('raise').lastError).toMatchObject({ errorClass: 'TypeError', message: 'boom', retryable: true });
      expect(step('raise').lastError!.backtrace.length).toBeGreaterThan(0);
      expect(step('permanent').lastError).toMatchObject({ message: 'permanent failure requested', code: 'CONFORMANCE_PERMANENT', retryable: false });
      expect(events.find((e) => e.event === 'resumed')).toMatchObject({ session_id: expect.any(String), in_flight: expect.any(Number) });

      await client.registerTemplate({
        namespace: NS,
        name: 'conformance_node_cancel',
        version: '1.0.0',
        identityStrategy: 'always_unique',
        steps: [{ name: 'wait', handler: handler('wait_for_cancel') }],
      });
      const waiting = (await client.createTask({ namespace: NS, name: 'conformance_node_cancel' })).task;
      for await (const update of client.watchTask(waiting.taskId)) if (update.kind === 'step_progress') break;
      await client.cancelTask(waiting.taskId, 'conformance cancel');
      expect(await nextEvent('cancelled')).toEqual({ event: 'cancelled', step_id: waiting.steps[0]!.stepId });
      child.kill('SIGTERM');
      expect(await nextEvent('stopped')).toEqual({ event: 'stopped' });
      const [code] = await exited;
      expect(code).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
