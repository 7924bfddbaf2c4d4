/**
 * The Node SDK against a real Tasker (`startTasker`, PostgreSQL, 127.0.0.1:0): a
 * `Worker` runs steps and a `TaskerClient` creates, watches, cancels and inspects
 * tasks, as a user would. Covers a diamond workflow, retry then success, permanent
 * and thrown failures, progress seen by `watchTask`, cancellation reaching
 * `ctx.signal`, a dropped connection mid-step (resumed, step kept, result applied
 * once), a duplicated report, a graceful stop that waits for in-flight work. The
 * conformance worker process is in node-sdk-conformance-worker.test.ts.
 */
import { once } from 'node:events';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { RunningTasker } from '../../src/app.js';
import { startTasker } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import {
  CancelledError,
  FailedPreconditionError,
  NotFoundError,
  PermanentError,
  PermissionDeniedError,
  RetryableError,
  TaskerClient,
  WaitTimeoutError,
  Worker,
  silentLogger,
} from '../../clients/node/src/index.js';
import type { Step, StepContext, StepTemplateInput, TaskUpdate } from '../../clients/node/src/index.js';
import { createPostgresTestDatabase } from '../support/databases.js';
import type { TestDatabase } from '../support/databases.js';

const silent = pino({ level: 'silent' });
const NS = 'nodesdk';

type Handler = (step: Step, ctx: StepContext) => unknown;

/** A promise with its resolver, for handlers the test steers. */
function latch<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

describe('Node SDK against a real server (PostgreSQL)', () => {
  let target: TestDatabase;
  let tasker: RunningTasker;
  let client: TaskerClient;
  let admin: TaskerClient;
  const workers: Worker[] = [];

  /** A started worker serving `handlers` (names prefixed with `<name>.`). */
  async function startWorker(name: string, handlers: Record<string, Handler>, concurrency = 4): Promise<Worker> {
    const worker = new Worker({
      address: tasker.address,
      token: 'test-worker-token',
      name: `node-sdk-${name}`,
      concurrency,
      reconnect: { initialMs: 20, maxMs: 200 },
      logger: silentLogger,
    });
    for (const [suffix, fn] of Object.entries(handlers)) worker.handle(`${name}.${suffix}`, fn);
    workers.push(worker);
    await worker.start();
    return worker;
  }

  /** Registers `name` with steps `[step, parents, handler suffix, extra]` and creates one task of it. */
  async function runTask(name: string, steps: Array<[string, string[], string, Partial<StepTemplateInput>?]>, context: Record<string, unknown> = {}) {
    await client.registerTemplate({
      namespace: NS,
      name,
      version: '1.0.0',
      identityStrategy: 'always_unique',
      steps: steps.map(([step, dependsOn, suffix, extra]) => ({
        name: step,
        handler: `${name}.${suffix}`,
        dependsOn,
        retry: { maxAttempts: 3, backoff: 'fixed', baseMs: 0, jitter: 0 },
        ...extra,
      })),
    });
    const { task, created } = await client.createTask({ namespace: NS, name, context, correlationId: `corr-${name}` });
    expect(created).toBe(true);
    return task.taskId;
  }

  /** Configuration of a Tasker on the test database; `server` entries are merged over the defaults. */
  function configFor(overrides: { server?: { port?: number } } = {}) {
    return loadConfig({
      env: { TASKER_ENV: 'test' },
      overrides: {
        server: { host: '127.0.0.1', port: 0, shutdown_grace_ms: 1_000, ...overrides.server },
        database: { url: target.url!, pool_size: 6 },
        workers: { heartbeat_interval_ms: 300, lease_ms: 3_000, session_ttl_ms: 60_000 },
        engine: { poll_interval_ms: 100, reaper_interval_ms: 100 },
        templates: { register_on_start: false },
      },
    });
  }

  beforeAll(async () => {
    target = await createPostgresTestDatabase();
    tasker = await startTasker(configFor(), silent);
    client = new TaskerClient({ address: tasker.address, token: 'test-client-token' });
    admin = new TaskerClient({ address: tasker.address, token: 'test-admin-token' });
  });

  afterAll(async () => {
    await Promise.all(workers.map((w) => w.stop({ graceMs: 0 })));
    client?.close();
    admin?.close();
    await tasker?.stop();
    await target?.close();
  });

  test('a worker runs a diamond workflow to completion; children see their ancestors results', async () => {
    const seen: Step[] = [];
    const worker = await startWorker('diamond', {
      work: (step) => {
        seen.push(step);
        const values = Object.values(step.ancestorResults).map((r) => (r as { value: number }).value);
        return { value: 1 + values.reduce((a, b) => a + b, 0), ancestors: Object.keys(step.ancestorResults).sort() };
      },
    });
    const completed: string[] = [];
    worker.on('step:completed', (step) => completed.push(step.name));
    const taskId = await runTask('diamond', [['a', [], 'work'], ['b', ['a'], 'work'], ['c', ['a'], 'work'], ['d', ['b', 'c'], 'work']], { order: 7 });

    const task = await client.waitForTask(taskId, { timeoutMs: 30_000 });
    expect(task.state).toBe('complete');
    expect(task.results).toEqual({
      a: { value: 1, ancestors: [] },
      b: { value: 2, ancestors: ['a'] },
      c: { value: 2, ancestors: ['a'] },
      d: { value: 6, ancestors: ['a', 'b', 'c'] },
    });
    expect(task.steps.map((s) => [s.name, s.state, s.attempts])).toEqual([
      ['a', 'complete', 1],
      ['b', 'complete', 1],
      ['c', 'complete', 1],
      ['d', 'complete', 1],
    ]);
    const first = seen.find((s) => s.name === 'a')!;
    expect(first).toMatchObject({ taskId, attempt: 1, maxAttempts: 3, context: { order: 7 }, correlationId: 'corr-diamond', handler: 'diamond.work' });
    expect(first.template).toEqual({ namespace: NS, name: 'diamond', version: '1.0.0' });
    expect(completed.sort()).toEqual(['a', 'b', 'c', 'd']);

    const sessions = await admin.listWorkers({ handler: 'diamond.work' });
    expect(sessions).toEqual([expect.objectContaining({ workerName: 'node-sdk-diamond', language: 'node', sdkVersion: '0.1.0', connected: true, maxInFlight: 4 })]);
    expect(sessions[0]!.sessionId).toBe(worker.session?.sessionId);
  });

  test('a retryable failure is retried (retry-after honoured) and then succeeds', async () => {
    const failures: Array<[number, boolean]> = [];
    const worker = await startWorker('retry', {
      flaky: (step) => {
        if (step.attempt === 1) throw new RetryableError('try again', { retryAfterMs: 0, code: 'FLAKY' });
        return { attempt: step.attempt };
      },
    });
    worker.on('step:failed', (step, failure) => failures.push([step.attempt, failure.retryable]));
    const taskId = await runTask('retry', [['only', [], 'flaky']]);
    const task = await client.waitForTask(taskId, { timeoutMs: 30_000 });
    expect(task.state).toBe('complete');
    expect(task.steps[0]).toMatchObject({ state: 'complete', attempts: 2, result: { attempt: 2 } });
    expect(task.steps[0]!.lastError).toMatchObject({ errorClass: 'RetryableError', message: 'try again', code: 'FLAKY', retryable: true, retryAfterMs: 0 });
    expect(failures).toEqual([[1, true]]);
  });

  test('a permanent failure ends the step at once; a thrown TypeError is reported with its class and stack', async () => {
    let raised = 0;
    await startWorker('failing', {
      permanent: () => {
        throw new PermanentError('card declined', { code: 'CARD_DECLINED', details: { last4: '4242' } });
      },
      raise: () => {
        raised += 1;
        throw new TypeError('boom');
      },
    });
    const taskId = await runTask('failing', [
      ['perm', [], 'permanent'],
      ['boom', [], 'raise', { retry: { maxAttempts: 2, backoff: 'fixed', baseMs: 0, jitter: 0 } }],
      ['after', ['perm'], 'raise'],
    ]);
    const task = await client.waitForTask(taskId, { timeoutMs: 30_000 });
    expect(task.state).toBe('error');
    const perm = task.steps.find((s) => s.name === 'perm')!;
    expect(perm).toMatchObject({ state: 'error', attempts: 1 });
    expect(perm.lastError).toMatchObject({ errorClass: 'PermanentError', message: 'card declined', code: 'CARD_DECLINED', retryable: false });
    const boom = task.steps.find((s) => s.name === 'boom')!;
    expect(boom).toMatchObject({ state: 'error', attempts: 2 });
    expect(boom.lastError).toMatchObject({ errorClass: 'TypeError', message: 'boom', retryable: true });
    expect(boom.lastError!.backtrace[0]).toMatch(/^at .*node-sdk\.test\.ts/);
    expect(task.steps.find((s) => s.name === 'after')!.state).toBe('pending');
    expect(raised).toBe(2);
  });

  test('progress reported by a handler is seen, in order, by a client watching the task', async () => {
    await startWorker('progress', {
      count: async (step, ctx) => {
        const count = step.handlerConfig.count as number;
        for (let i = 1; i <= count; i++) await ctx.progress({ i, of: count });
        return { count };
      },
    });
    const taskId = await runTask('progress', [['counter', [], 'count', { handlerConfig: { count: 3 } }]]);
    const updates: TaskUpdate[] = [];
    for await (const update of client.watchTask(taskId)) updates.push(update);
    const progress = updates.filter((u) => u.kind === 'step_progress');
    expect(progress.map((u) => (u.kind === 'step_progress' ? [u.seq, u.payload] : null))).toEqual([
      [1, { i: 1, of: 3 }],
      [2, { i: 2, of: 3 }],
      [3, { i: 3, of: 3 }],
    ]);
    expect(updates.find((u) => u.kind === 'step_result')).toMatchObject({ stepName: 'counter', result: { count: 3 } });
    expect(updates.at(-1)).toMatchObject({ kind: 'task_state_changed', toState: 'complete' });
  });

  test('cancelling the task aborts ctx.signal in the running handler', async () => {
    const started = latch();
    const aborted = latch<unknown>();
    const worker = await startWorker('cancel', {
      wait: async (_step, ctx) => {
        await ctx.progress({ waiting: true });
        started.resolve();
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
        aborted.resolve(ctx.signal.reason);
        return { cancelled: true };
      },
    });
    const cancelledEvents: CancelledError[] = [];
    worker.on('cancelled', (_step, reason) => cancelledEvents.push(reason));
    const taskId = await runTask('cancel', [['slow', [], 'wait'], ['never', ['slow'], 'wait']]);
    await started.promise;
    const { task, cancelledStepIds } = await client.cancelTask(taskId, 'operator said stop');
    expect(task.state).toBe('cancelled');
    expect(cancelledStepIds).toHaveLength(2);
    const reason = await aborted.promise;
    expect(reason).toBeInstanceOf(CancelledError);
    expect(reason).toMatchObject({ kind: 'cancelled', message: 'operator said stop' });
    expect(cancelledEvents.map((e) => e.kind)).toEqual(['cancelled']);
    await worker.stop({ graceMs: 5_000 });
    const after = await client.getTask(taskId);
    expect(after.steps.map((s) => s.state)).toEqual(['cancelled', 'cancelled']);
  });

  test('interruptConnection() mid-step: the session resumes, the step is kept, its result applied once', async () => {
    const reconnects: string[] = [];
    const worker: Worker = await startWorker('interrupt', {
      drop: async (step, ctx) => {
        const resumed = once(worker, 'resumed');
        worker.interruptConnection();
        // Produced while disconnected: sent after the resume, acked then.
        const progress = ctx.progress({ during: 'outage' });
        const [info] = (await resumed) as [{ resumed: boolean; inFlight: Array<{ stepId: string }> }];
        await progress;
        return { resumed: info.resumed, keptInFlight: info.inFlight.some((s) => s.stepId === step.id) };
      },
      twice: () => {
        worker.debug.duplicateNextReport();
        return { ok: true };
      },
    });
    worker.on('reconnecting', (info) => reconnects.push(info.error?.code ?? 'OK'));
    const errors: Error[] = [];
    worker.on('error', (err) => errors.push(err));
    const sessionId = worker.session!.sessionId;
    const taskId = await runTask('interrupt', [['drop', [], 'drop'], ['twice', ['drop'], 'twice']]);
    const task = await client.waitForTask(taskId, { timeoutMs: 30_000 });
    expect(task.state).toBe('complete');
    expect(task.results).toEqual({ drop: { resumed: true, keptInFlight: true }, twice: { ok: true } });
    expect(task.steps.map((s) => s.attempts)).toEqual([1, 1]);
    expect(reconnects).toEqual(['CANCELLED']);
    expect(worker.session).toMatchObject({ sessionId, resumed: true, generation: 2 });
    expect(errors).toEqual([]);
    for (const step of task.steps) {
      const audit = await admin.getStepAudit(step.stepId);
      expect(audit.filter((t) => t.toState === 'complete')).toHaveLength(1);
    }
    const updates: TaskUpdate[] = [];
    for await (const update of client.watchTask(taskId)) updates.push(update);
    expect(updates.filter((u) => u.kind === 'step_progress')).toEqual([expect.objectContaining({ seq: 1, payload: { during: 'outage' } })]);
    expect(updates.filter((u) => u.kind === 'step_result')).toHaveLength(2);
  });

  test('a graceful stop drains, waits for the in-flight step and its ack, then closes', async () => {
    const started = latch();
    const release = latch();
    const worker = await startWorker('graceful', {
      slow: async () => {
        started.resolve();
        await release.promise;
        return { finished: true };
      },
    });
    const taskId = await runTask('graceful', [['slow', [], 'slow']]);
    await started.promise;
    let stopped = false;
    const stopping = worker.stop({ graceMs: 20_000 }).then(() => (stopped = true));
    // Drained: a step that becomes ready now is not given to this worker.
    const laterId = (await client.createTask({ namespace: NS, name: 'graceful' })).task.taskId;
    await new Promise((r) => setTimeout(r, 300));
    expect(stopped).toBe(false);
    expect(worker.inFlight).toBe(1);
    release.resolve();
    await stopping;
    // Resolved only after the completion was committed and acknowledged.
    const task = await client.getTask(taskId);
    expect(task.state).toBe('complete');
    expect(task.results).toEqual({ slow: { finished: true } });
    expect(worker.unacknowledgedReports).toBe(0);
    expect(worker.connected).toBe(false);
    expect((await client.getTask(laterId)).steps[0]).toMatchObject({ state: 'pending', attempts: 0 });
    await client.cancelTask(laterId, 'cleanup');
  });

  test('the application client: templates, paging, operator repairs, health, typed refusals', async () => {
    const invalid = await client.validateTemplate({ namespace: NS, name: 'bad', version: '1', steps: [{ name: 'a', handler: 'h', dependsOn: ['ghost'] }] });
    expect(invalid.valid).toBe(false);
    expect(invalid.violations[0]!.message).toMatch(/ghost/);
    const registered = await client.registerTemplate({
      namespace: NS,
      name: 'manual',
      version: '2.0.0',
      description: 'repaired by hand',
      identityStrategy: 'always_unique',
      steps: [
        { name: 'a', handler: 'manual.nobody' },
        { name: 'b', handler: 'manual.nobody', dependsOn: ['a'], retry: { maxAttempts: 4, backoff: 'linear', baseMs: 10 } },
      ],
    });
    expect(registered).toMatchObject({ created: true, template: { name: 'manual', version: '2.0.0', identityStrategy: 'always_unique' } });
    expect(registered.template.bodyHash).toMatch(/^[0-9a-f]+$/);
    expect((await client.getTemplate({ namespace: NS, name: 'manual' })).steps[1]).toMatchObject({ dependsOn: ['a'], retry: { maxAttempts: 4, backoff: 'linear', baseMs: 10 } });
    expect((await client.listTemplates({ namespace: NS })).map((t) => t.name)).toContain('manual');

    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await client.createTask({ namespace: NS, name: 'manual', context: { i }, tags: ['paging'] })).task.taskId);
    const listed: string[] = [];
    for await (const task of client.iterateTasks({ tag: 'paging', pageSize: 2 })) listed.push(task.taskId);
    expect(listed.sort()).toEqual([...ids].sort());
    expect((await client.listTasks({ tag: 'paging', states: ['complete'] })).tasks).toEqual([]);

    const task = await client.getTask(ids[0]!);
    expect(task).toMatchObject({ state: 'pending', context: { i: 0 }, tags: ['paging'], template: { version: '2.0.0' } });
    expect(task.edges).toEqual([{ from: 'a', to: 'b' }]);
    await expect(client.retryStep(task.steps[0]!.stepId, 'not failed')).rejects.toBeInstanceOf(FailedPreconditionError);
    expect(await client.resolveStep(task.steps[0]!.stepId, 'done elsewhere')).toMatchObject({ name: 'a', state: 'resolved_manually' });
    expect(await client.completeStep(task.steps[1]!.stepId, { by: 'operator' }, 'typed in')).toMatchObject({ state: 'complete', result: { by: 'operator' } });
    const done = await client.waitForTask(ids[0]!, { timeoutMs: 30_000 });
    expect(done).toMatchObject({ state: 'complete', results: { b: { by: 'operator' } } });
    await expect(client.waitForTask(ids[1]!, { timeoutMs: 200 })).rejects.toBeInstanceOf(WaitTimeoutError);

    const health = await admin.getSystemHealth();
    expect(health.taskCounts.complete).toBeGreaterThanOrEqual(1);
    expect(health.at).toBeInstanceOf(Date);
    const audit = await admin.getStepAudit(task.steps[1]!.stepId);
    expect(audit.at(-1)).toMatchObject({ toState: 'complete', reason: 'typed in' });
    await expect(client.listWorkers()).rejects.toBeInstanceOf(PermissionDeniedError);
    await Promise.all(ids.slice(1).map((id) => client.cancelTask(id, 'cleanup')));
  });

  test('subscribeEvents resumes after the server went away, from the last cursor, losing nothing', async () => {
    const second = await startTasker(configFor({ server: { port: 0 } }), silent);
    const port = second.port;
    const watcher = new TaskerClient({
      address: second.address,
      token: 'test-client-token',
      reconnect: { initialMs: 20, maxMs: 200 },
      channelOptions: { 'grpc.initial_reconnect_backoff_ms': 50, 'grpc.max_reconnect_backoff_ms': 200 },
    });
    await client.registerTemplate({ namespace: NS, name: 'events', version: '1.0.0', identityStrategy: 'always_unique', steps: [{ name: 'only', handler: 'events.nobody' }] });
    const finish = async (): Promise<string> => {
      const { task } = await client.createTask({ namespace: NS, name: 'events' });
      await client.completeStep(task.steps[0]!.stepId, { ok: true });
      return task.taskId;
    };
    const controller = new AbortController();
    const seen: Array<{ cursor: number; type: string; taskId: string }> = [];
    const waiters: Array<() => void> = [];
    const completedTask = async (taskId: string): Promise<void> => {
      while (!seen.some((e) => e.type === 'task.completed' && e.taskId === taskId)) await new Promise<void>((r) => waiters.push(r));
    };
    const reading = (async () => {
      for await (const e of watcher.subscribeEvents({ namespace: NS, taskName: 'events', afterCursor: 0, signal: controller.signal })) {
        seen.push({ cursor: e.cursor, type: e.eventType, taskId: e.taskId });
        waiters.splice(0).forEach((w) => w());
      }
    })();
    let third: RunningTasker | null = null;
    try {
      const before = await finish();
      await completedTask(before);
      await second.stop();
      const during = await finish(); // committed while the subscription's server is down
      third = await startTasker(configFor({ server: { port } }), silent);
      await completedTask(during);
      const cursors = seen.map((e) => e.cursor);
      expect(cursors).toEqual([...new Set(cursors)].sort((a, b) => a - b));
      // Exactly the events the server holds for that task, none missing.
      const stored: number[] = [];
      for await (const e of client.subscribeEvents({ taskId: during, afterCursor: 0 })) {
        stored.push(e.cursor);
        if (e.eventType === 'task.completed') break;
      }
      expect(seen.filter((e) => e.taskId === during).map((e) => e.cursor)).toEqual(stored);
    } finally {
      controller.abort();
      await reading;
      watcher.close();
      await second.stop();
      await third?.stop();
    }
  });

  test('a server restart: the worker is drained, reconnects to the new instance and resumes its session', async () => {
    const second = await startTasker(configFor(), silent);
    const port = second.port;
    const worker = new Worker({
      address: second.address,
      token: 'test-worker-token',
      name: 'node-sdk-restart',
      reconnect: { initialMs: 20, maxMs: 200 },
      channelOptions: { 'grpc.initial_reconnect_backoff_ms': 50, 'grpc.max_reconnect_backoff_ms': 200 },
      logger: silentLogger,
      handlers: { 'restart.work': (step) => ({ ran: step.name }) },
    });
    workers.push(worker);
    const drains: string[] = [];
    worker.on('draining', (d) => drains.push(d.reason));
    let third: RunningTasker | null = null;
    try {
      const first = await worker.start();
      const resumed = once(worker, 'resumed');
      await second.stop();
      third = await startTasker(configFor({ server: { port } }), silent);
      const [info] = (await resumed) as [{ sessionId: string; resumed: boolean }];
      expect(info).toMatchObject({ sessionId: first.sessionId, resumed: true });
      expect(drains).toEqual(['server shutting down']);
      const taskId = await runTask('restart', [['again', [], 'work']]);
      expect((await client.waitForTask(taskId, { timeoutMs: 30_000 })).results).toEqual({ again: { ran: 'again' } });
    } finally {
      await worker.stop({ graceMs: 0 });
      await second.stop();
      await third?.stop();
    }
  });

  test('server refusals surface as typed errors: a bad worker token, an unknown task', async () => {
    const worker = new Worker({ address: tasker.address, token: 'not-a-token', logger: silentLogger, handlers: { 'x.y': () => null } });
    await expect(worker.start()).rejects.toMatchObject({ name: 'UnauthenticatedError', code: expect.any(String) });
    await expect(client.getTask('00000000-0000-4000-8000-000000000000')).rejects.toBeInstanceOf(NotFoundError);
    await expect(client.getTask('00000000-0000-4000-8000-000000000000')).rejects.toMatchObject({ code: 'TASK_NOT_FOUND' });
  });
});
