/**
 * The `tasker` CLI as a child process while a Node SDK `Worker` in the test process
 * runs the steps, against a real server on PostgreSQL: `task watch` follows a task
 * live until it completes (text) and replays it (`--json`); `task cancel` takes a
 * running step from its worker and ends a watch; `task watch --exit-status` exits
 * 0, 2 or 3 for a task that ended complete, in error or cancelled; `step
 * retry|resolve|complete` repair failed steps and `task retry` runs a task's failed steps again, after which the
 * task completes with the operator's result passed on; `workers` lists the worker's
 * session and needs the admin role.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PermanentError, silentLogger, Worker } from '../../clients/node/src/index.js';
import type { CancelledError, Step, StepContext } from '../../clients/node/src/index.js';
import { TaskState } from '../../src/gen/tasker/v1/common.js';
import type { Task } from '../../src/gen/tasker/v1/task.js';
import { clients, eventually, TOKENS, unary } from './api-client.js';
import type { CliServer } from './cli-harness.js';
import { expectFailure, expectOk, json, jsonLines, lines, spawnTasker, startCliServer, tasker } from './cli-harness.js';

const TEMPLATES = `namespace: cli
name: pipeline
version: 1.0.0
identity_strategy: always_unique
steps:
  - name: fetch
    handler: cli.fetch
  - name: transform
    handler: cli.transform
    depends_on: [fetch]
  - name: store
    handler: cli.store
    depends_on: [transform]
---
namespace: cli
name: hold
version: 1.0.0
identity_strategy: always_unique
steps:
  - name: wait
    handler: cli.hold
---
namespace: cli
name: repair
version: 1.0.0
identity_strategy: always_unique
steps:
  - name: charge
    handler: cli.flaky
  - name: notify
    handler: cli.flaky
  - name: audit
    handler: cli.flaky
  - name: join
    handler: cli.join
    depends_on: [charge, notify, audit]
`;

/** A promise with its resolver. */
function latch<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

interface JsonStep {
  stepId: string;
  name: string;
  state: string;
  result?: unknown;
}

describe('tasker CLI with a Node SDK worker running the steps (PostgreSQL)', () => {
  let server: CliServer;
  let api: ReturnType<typeof clients>;
  let worker: Worker;
  let client: string[];
  /** Released once `task watch` is following the pipeline task, so the watch sees it run live. */
  const fetchGate = latch();
  const held = latch<string>();
  const cancelled = latch<CancelledError>();
  /** Steps of cli.flaky that succeed; the others fail permanently. */
  const healthy = new Set<string>();
  let pipelineId = '';

  const getTask = async (taskId: string): Promise<Task> => (await unary(api.tasks.getTask.bind(api.tasks), { taskId, omitResults: false })).task as Task;
  const stepIds = (task: Task): Record<string, string> => Object.fromEntries(task.steps.map((s) => [s.name, s.stepId]));
  const untilState = (taskId: string, state: TaskState) => eventually(() => getTask(taskId), (t) => t.state === state, `task ${taskId} in ${TaskState[state]}`);

  async function createTask(ref: string): Promise<string> {
    const run = await tasker('task', 'create', ref, '--json', ...client);
    expectOk(run);
    return (json(run) as { task: { taskId: string } }).task.taskId;
  }

  beforeAll(async () => {
    server = await startCliServer();
    api = clients(server.tasker.address);
    client = server.remote(TOKENS.client);
    const parts = TEMPLATES.split('---\n');
    const files = await Promise.all(parts.map((text, i) => server.file(`template-${i}.yaml`, text)));
    expectOk(await tasker('template', 'register', ...files, ...client));

    worker = new Worker({ address: server.tasker.address, token: TOKENS.worker, name: 'cli-worker', concurrency: 8, logger: silentLogger, reconnect: { initialMs: 20, maxMs: 200 } });
    worker.handle('cli.fetch', async () => {
      await fetchGate.promise;
      return { rows: 3 };
    });
    worker.handle('cli.transform', async (step: Step, ctx: StepContext) => {
      await ctx.progress({ done: 1 });
      await ctx.progress({ done: 2 });
      return { rows: (step.ancestorResults['fetch'] as { rows: number }).rows * 2 };
    });
    worker.handle('cli.store', async (step: Step) => ({ stored: step.ancestorResults['transform'] }));
    worker.handle('cli.hold', (step: Step, ctx: StepContext) => {
      held.resolve(step.id);
      return new Promise((_resolve, reject) =>
        ctx.signal.addEventListener('abort', () => {
          cancelled.resolve(ctx.signal.reason as CancelledError);
          reject(ctx.signal.reason);
        }),
      );
    });
    worker.handle('cli.flaky', async (step: Step) => {
      if (!healthy.has(step.name)) throw new PermanentError(`${step.name} is down`, { code: 'DOWN' });
      return { step: step.name, attempt: step.attempt };
    });
    worker.handle('cli.join', async (step: Step) => step.ancestorResults);
    await worker.start();
  });

  afterAll(async () => {
    await worker?.stop({ graceMs: 0 });
    api?.close();
    await server?.close();
  });

  it('task watch follows a task live as the worker runs it and exits 0 when it completes', async () => {
    pipelineId = await createTask('cli/pipeline');
    const watch = spawnTasker(['task', 'watch', pipelineId, ...client]);
    await watch.waitForOutput('task created -> pending');
    fetchGate.resolve();
    const run = await watch.done;
    expectOk(run);
    const out = lines(run.stdout);
    expect(out[0]).toMatch(/^\d{4}-\d\d-\d\dT\S+Z #\d+ task created -> pending$/);
    expect(out.at(-1)).toBe('Task complete.');
    expect(out.at(-2)).toMatch(/ task in_progress -> complete$/);
    expect(out).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/ step fetch pending -> enqueued attempt 1$/),
        expect.stringMatching(/ step fetch in_progress -> complete attempt 1$/),
        expect.stringMatching(/ step fetch result: \{"rows":3\}$/),
        expect.stringMatching(/ step transform progress #\d+: \{"done":1\}$/),
        expect.stringMatching(/ step transform progress #\d+: \{"done":2\}$/),
        expect.stringMatching(/ step transform result: \{"rows":6\}$/),
        expect.stringMatching(/ step store result: \{"stored":\{"rows":6\}\}$/),
      ]),
    );

    // Replayed from history as JSON: one update per line, ending with the completion.
    const replay = await tasker('task', 'watch', pipelineId, '--json', ...client);
    expectOk(replay);
    const updates = jsonLines(replay);
    expect(updates.length).toBe(out.length - 1);
    for (const u of updates) expect(u).toMatchObject({ cursor: expect.any(Number), at: expect.any(String) });
    expect(updates.at(-1)).toMatchObject({ taskStateChanged: { fromState: 'TASK_STATE_IN_PROGRESS', toState: 'TASK_STATE_COMPLETE' } });
    expect(updates).toContainEqual(expect.objectContaining({ stepProgress: expect.objectContaining({ stepName: 'transform', payload: { done: 2 } }) }));

    // --exit-status: 0 for a completed task, also when --skip-history sends nothing for a task already finished.
    const status = await tasker('task', 'watch', pipelineId, '--exit-status', ...client);
    expectOk(status);
    expect(lines(status.stdout).at(-1)).toBe('Task complete.');
    const skipped = await tasker('task', 'watch', pipelineId, '--skip-history', '--exit-status', ...client);
    expectOk(skipped);
    expect(skipped.stdout).toBe('');

    const got = json(await tasker('task', 'get', pipelineId, '--json', ...client)) as { task: { state: string; steps: JsonStep[] } };
    expect(got.task.state).toBe('TASK_STATE_COMPLETE');
    expect(got.task.steps.map((s) => [s.name, s.state, s.result])).toEqual([
      ['fetch', 'STEP_STATE_COMPLETE', { rows: 3 }],
      ['transform', 'STEP_STATE_COMPLETE', { rows: 6 }],
      ['store', 'STEP_STATE_COMPLETE', { stored: { rows: 6 } }],
    ]);
  });

  it('task cancel takes a running step from its worker and ends a watch; a finished task is refused', async () => {
    const taskId = await createTask('cli/hold');
    const stepId = await held.promise;
    const watch = spawnTasker(['task', 'watch', taskId, ...client]);
    await watch.waitForOutput('step wait enqueued -> in_progress');

    const cancel = await tasker('task', 'cancel', taskId, '--reason', 'customer called', ...client);
    expectOk(cancel);
    expect(lines(cancel.stdout).slice(0, 2)).toEqual(['Cancelled 1 step(s).', `task ${taskId}  cli/hold@1.0.0  cancelled`]);
    expect((await cancelled.promise).kind).toBe('cancelled');

    const watched = await watch.done;
    expectOk(watched);
    const out = lines(watched.stdout);
    expect(out).toContainEqual(expect.stringMatching(/ step wait in_progress -> cancelled attempt 1 \(customer called\)$/));
    expect(out.slice(-2)).toEqual([expect.stringMatching(/ task in_progress -> cancelled \(customer called\)$/), 'Task cancelled.']);

    // Without --exit-status the watch above exited 0; with it a cancelled task exits 3.
    const status = await tasker('task', 'watch', taskId, '--exit-status', ...client);
    expect(status.stderr).toBe('');
    expect(status.code).toBe(3);
    expect(lines(status.stdout).at(-1)).toBe('Task cancelled.');
    const skipped = await tasker('task', 'watch', taskId, '--skip-history', '--exit-status', '--json', ...client);
    expect(skipped).toEqual({ code: 3, stdout: '', stderr: '' });

    const again = json(await tasker('task', 'cancel', taskId, '--json', ...client)) as { cancelled_step_ids: string[]; task: { state: string; steps: JsonStep[] } };
    expect(again.cancelled_step_ids).toEqual([]);
    expect(again.task.state).toBe('TASK_STATE_CANCELLED');
    expect(again.task.steps.map((s) => [s.stepId, s.state])).toEqual([[stepId, 'STEP_STATE_CANCELLED']]);

    const finished = await tasker('task', 'cancel', pipelineId, ...client);
    expectFailure(finished, 1, /^tasker: FAILED_PRECONDITION TASK_NOT_CANCELLABLE: /);
  });

  it('step retry, resolve and complete repair failed steps, and the task completes with the operator result', async () => {
    healthy.clear();
    const taskId = await createTask('cli/repair');
    const failed = await eventually(
      () => getTask(taskId),
      (t) => t.steps.filter((s) => s.lastError !== undefined).length === 3 && t.state === TaskState.TASK_STATE_ERROR,
      'three failed steps',
    );
    const ids = stepIds(failed);

    const text = await tasker('task', 'get', taskId, ...client);
    expectOk(text);
    expect(lines(text.stdout)[0]).toBe(`task ${taskId}  cli/repair@1.0.0  error`);
    expect(lines(text.stdout)).toContainEqual(expect.stringMatching(new RegExp(`^ {2}charge +error +1/3 {2}${ids['charge']} {2}last_error=\\S+: charge is down$`)));

    healthy.add('charge');
    const retried = await tasker('step', 'retry', ids['charge'] ?? '', '--reason', 'card fixed', ...client);
    expectOk(retried);
    // Read after the retry committed: the worker may already have taken the step again.
    expect(retried.stdout).toMatch(new RegExp(`^charge +(pending|enqueued|in_progress|complete) +\\d+/\\d+ {2}${ids['charge']}`));

    const resolved = await tasker('step', 'resolve', ids['notify'] ?? '', '--reason', 'sent by hand', ...client);
    expectOk(resolved);
    expect(resolved.stdout).toMatch(/^notify +resolved_manually /);

    const completed = await tasker('step', 'complete', ids['audit'] ?? '', '--result', '{"audited":true}', '--json', ...client);
    expectOk(completed);
    expect(json(completed)).toMatchObject({ stepId: ids['audit'], name: 'audit', state: 'STEP_STATE_COMPLETE', result: { audited: true } });

    const done = await untilState(taskId, TaskState.TASK_STATE_COMPLETE);
    expect(done.steps.find((s) => s.name === 'join')?.result).toMatchObject({ charge: { step: 'charge' }, audit: { audited: true } });
    const after = await tasker('task', 'get', taskId, ...client);
    expectOk(after);
    expect(lines(after.stdout)).toContainEqual(
      expect.stringMatching(new RegExp(`^ {2}charge +complete +1/3 {2}${ids['charge']} {2}retried after attempt 1 {2}result=\\{"step":"charge","attempt":2\\}`)),
    );

    const refused = await tasker('step', 'retry', ids['audit'] ?? '', ...client);
    expectFailure(refused, 1, /^tasker: FAILED_PRECONDITION TASK_NOT_ACTIVE: cannot retry step audit: its task \S+ is complete$/);
    const unknown = await tasker('step', 'resolve', '00000000-0000-7000-8000-000000000000', ...client);
    expectFailure(unknown, 1, /^tasker: NOT_FOUND STEP_NOT_FOUND: /);
  });

  it('task retry runs every failed step of a task again', async () => {
    healthy.clear();
    healthy.add('charge');
    const taskId = await createTask('cli/repair');
    await eventually(
      () => getTask(taskId),
      (t) => t.state === TaskState.TASK_STATE_ERROR && t.steps.filter((s) => s.lastError !== undefined).length === 2,
      'notify and audit failed',
    );
    const status = await tasker('task', 'watch', taskId, '--exit-status', ...client);
    expect(status.stderr).toBe('');
    expect(status.code).toBe(2);
    expect(lines(status.stdout).at(-1)).toBe('Task error.');
    const early = await tasker('task', 'retry', pipelineId, ...client);
    expectFailure(early, 1, /^tasker: FAILED_PRECONDITION TASK_NOT_RETRYABLE: /);

    healthy.add('notify');
    healthy.add('audit');
    const retried = await tasker('task', 'retry', taskId, '--reason', 'services back', ...client);
    expectOk(retried);
    // The answer shows the task as read after the retry committed: the worker may already be running it again.
    expect(lines(retried.stdout)[0]).toMatch(new RegExp(`^task ${taskId} {2}cli/repair@1\\.0\\.0 {2}(pending|in_progress|complete)$`));
    const done = await untilState(taskId, TaskState.TASK_STATE_COMPLETE);
    expect(done.steps.find((s) => s.name === 'join')?.result).toEqual({
      charge: { step: 'charge', attempt: 1 },
      notify: { step: 'notify', attempt: 2 },
      audit: { step: 'audit', attempt: 2 },
    });
  });

  it('workers lists the worker session with its handlers, and needs the admin role', async () => {
    // No --token: the CLI takes the configured admin token (config/tasker.test.yaml).
    const text = await tasker('workers', ...server.remote());
    expectOk(text);
    const [head, load, handlers] = lines(text.stdout);
    expect(head).toMatch(/^\S+ {2}cli-worker \(node \S+\) {2}active, connected to \S+/);
    expect(load).toMatch(/^ {2}in flight \d+\/8, last heartbeat \d{4}-/);
    expect(handlers).toBe('  handlers: cli.fetch, cli.flaky, cli.hold, cli.join, cli.store, cli.transform');

    const asJson = await tasker('workers', '--handler', 'cli.join', '--json', ...server.remote(TOKENS.admin));
    expectOk(asJson);
    expect(jsonLines(asJson)).toEqual([expect.objectContaining({ workerName: 'cli-worker', language: 'node', connected: true, maxInFlight: 8 })]);

    const none = await tasker('workers', '--handler', 'cli.nothing', ...server.remote(TOKENS.admin));
    expectOk(none);
    expect(none.stdout).toBe('No worker sessions.\n');

    const denied = await tasker('workers', ...client);
    expectFailure(denied, 1, /^tasker: PERMISSION_DENIED .*admin/);
  });
});
