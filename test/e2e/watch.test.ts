/**
 * The streams of TaskService on the wire: WatchTask replays a task's history (state
 * changes, progress, results), continues live and ends after the terminal update —
 * also when the changes are committed elsewhere (the engine writing directly, or a
 * second Tasker instance on the same PostgreSQL) — and shows a step's start before its
 * progress, and its progress before its outcome, when a worker's reports of them are
 * committed together; SubscribeEvents filters, starts live
 * or from a cursor, resumes after a disconnect without losing or repeating an event,
 * and answers OUT_OF_RANGE for a cursor whose events are gone. Step outcomes are
 * driven through the engine (claims and outcomes), not the worker protocol.
 */
import * as grpc from '@grpc/grpc-js';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningTasker } from '../../src/app.js';
import { startTasker } from '../../src/app.js';
import type { StepAssignment } from '../../src/engine/claims.js';
import type { OutcomeReport } from '../../src/engine/outcomes.js';
import { StepState, TaskState } from '../../src/gen/tasker/v1/common.js';
import type { CreateTaskRequest, Event, SubscribeEventsRequest, TaskUpdate } from '../../src/gen/tasker/v1/task.js';
import type { ServerTarget, TestDatabase } from '../support/databases.js';
import { createPostgresTestDatabase, serverBackends } from '../support/databases.js';
import { apiConfig, auth, clients, collect, EngineDriver, protoTemplate, refusal, silent, TOKENS, unary } from './api-client.js';

function createRequest(name: string): CreateTaskRequest {
  return {
    template: { namespace: 'e2e', name, version: '' },
    context: {},
    priority: 0,
    tags: [],
    initiator: '',
    sourceSystem: '',
    reason: '',
    correlationId: '',
    idempotencyKey: '',
  };
}

/** A compact, comparable description of an update. */
function describeUpdate(u: TaskUpdate): string {
  const v = u.update;
  switch (v?.$case) {
    case 'taskStateChanged':
      return `task ${TaskState[v.value.fromState]}>${TaskState[v.value.toState]}`.replaceAll('TASK_STATE_', '');
    case 'stepStateChanged':
      return `${v.value.stepName} ${StepState[v.value.fromState]}>${StepState[v.value.toState]}`.replaceAll('STEP_STATE_', '');
    case 'stepProgress':
      return `${v.value.stepName} progress ${v.value.seq} ${JSON.stringify(v.value.payload)}`;
    case 'stepResult':
      return `${v.value.stepName} result ${JSON.stringify(v.value.result)}`;
    default:
      return 'unknown';
  }
}

/** Cursors never go down; only a result shares the cursor of the completion before it. */
function expectCursorOrder(updates: readonly TaskUpdate[]): void {
  for (let i = 1; i < updates.length; i++) {
    const [prev, cur] = [updates[i - 1] as TaskUpdate, updates[i] as TaskUpdate];
    if (cur.update?.$case === 'stepResult') expect(cur.cursor).toBe(prev.cursor);
    else expect(cur.cursor).toBeGreaterThan(prev.cursor);
  }
}

describe.each(serverBackends)('WatchTask on $name', (backend) => {
  let target: ServerTarget;
  let tasker: RunningTasker;
  let api: ReturnType<typeof clients>;
  let engine: EngineDriver;

  const create = async (name: string) => (await unary(api.tasks.createTask.bind(api.tasks), createRequest(name))).task!.taskId;
  const watch = (taskId: string, skipHistory = false) =>
    collect(api.tasks.watchTask({ taskId, skipHistory }, auth(TOKENS.client)));
  async function run(handler: string, step: string, result: unknown, progress: unknown[] = []): Promise<void> {
    const [a] = await engine.claim(handler, 1);
    expect(a?.stepName).toBe(step);
    await engine.started(a!);
    for (const [i, p] of progress.entries()) await engine.progress(a!, i + 1, p);
    await engine.completed(a!, result);
  }

  beforeAll(async () => {
    target = await backend.open();
    tasker = await startTasker(apiConfig(target.url), silent);
    api = clients(tasker.address);
    engine = new EngineDriver(tasker.database.db);
    for (const name of ['watched', 'finished', 'quiet', 'reopened', 'grouped']) {
      await unary(api.templates.registerTemplate.bind(api.templates), {
        template: protoTemplate(name, [['first'], ['second', ['first']]]),
      });
    }
  });

  afterAll(async () => {
    api?.close();
    await tasker?.stop();
    await target?.close();
  });

  it('replays the history with progress and results, continues live and ends at the terminal state', async () => {
    const taskId = await create('watched');
    await run('watched.work', 'first', { n: 1 }, [{ pct: 50 }, { pct: 90 }]);
    const stream = watch(taskId);
    const history = [
      'task UNSPECIFIED>PENDING',
      'first PENDING>ENQUEUED',
      'task PENDING>IN_PROGRESS',
      'first ENQUEUED>IN_PROGRESS',
      'first progress 1 {"pct":50}',
      'first progress 2 {"pct":90}',
      'first IN_PROGRESS>COMPLETE',
      'first result {"n":1}',
    ];
    expect((await stream.atLeast(history.length)).map(describeUpdate)).toEqual(history);

    await run('watched.work', 'second', [1, 2, 3]);
    expect(await stream.ended).toEqual({ code: grpc.status.OK, error: null });
    expect(stream.items.map(describeUpdate)).toEqual([
      ...history,
      'second PENDING>ENQUEUED',
      'second ENQUEUED>IN_PROGRESS',
      'second IN_PROGRESS>COMPLETE',
      'second result [1,2,3]',
      'task IN_PROGRESS>COMPLETE',
    ]);
    expectCursorOrder(stream.items);
    const progress = stream.items.find((u) => u.update?.$case === 'stepProgress');
    expect(progress?.update).toMatchObject({ $case: 'stepProgress', value: { stepName: 'first', attempt: 1, seq: 1 } });
  });

  it('shows a start before the progress committed with it, and that progress before the outcome', async () => {
    const taskId = await create('grouped');
    const live = watch(taskId);
    await live.atLeast(1);
    const report = (a: StepAssignment, kind: OutcomeReport['kind'], extra: Partial<OutcomeReport> = {}): OutcomeReport => ({
      reportId: `${a.stepName}-${kind}-${extra.seq ?? ''}`,
      stepId: a.stepId,
      attempt: a.attempt,
      kind,
      ...extra,
    });
    const progress = (a: StepAssignment, seq: number) => report(a, 'progress', { seq, payloadJson: JSON.stringify({ seq }) });

    // StepStarted and StepProgress in one group commit; the completion in a later one.
    const [first] = await engine.claim('grouped.work', 1);
    expect((await engine.report([report(first!, 'started'), progress(first!, 1)])).map((a) => a.status)).toEqual([
      'accepted',
      'accepted',
    ]);
    await engine.completed(first!, 'one');
    // Started, progress and completed all in one group commit.
    const [second] = await engine.claim('grouped.work', 1);
    const acks = await engine.report([
      report(second!, 'started'),
      progress(second!, 1),
      progress(second!, 2),
      report(second!, 'completed', { resultJson: '"two"' }),
    ]);
    expect(acks.every((a) => a.status === 'accepted')).toBe(true);

    const expected = [
      'task UNSPECIFIED>PENDING',
      'first PENDING>ENQUEUED',
      'task PENDING>IN_PROGRESS',
      'first ENQUEUED>IN_PROGRESS',
      'first progress 1 {"seq":1}',
      'first IN_PROGRESS>COMPLETE',
      'first result "one"',
      'second PENDING>ENQUEUED',
      'second ENQUEUED>IN_PROGRESS',
      'second progress 1 {"seq":1}',
      'second progress 2 {"seq":2}',
      'second IN_PROGRESS>COMPLETE',
      'second result "two"',
      'task IN_PROGRESS>COMPLETE',
    ];
    expect((await live.ended).code).toBe(grpc.status.OK);
    expect(live.items.map(describeUpdate)).toEqual(expected);
    expectCursorOrder(live.items);
    // The replay of the history is in the same order.
    const replay = watch(taskId);
    expect((await replay.ended).code).toBe(grpc.status.OK);
    expect(replay.items.map(describeUpdate)).toEqual(expected);
  });

  it('sends the whole history of a finished task and ends; with skip_history it ends at once', async () => {
    const taskId = await create('finished');
    await run('finished.work', 'first', 'a');
    await run('finished.work', 'second', 'b');
    const replay = watch(taskId);
    expect(await replay.ended).toEqual({ code: grpc.status.OK, error: null });
    expect(replay.items.map(describeUpdate).at(-1)).toBe('task IN_PROGRESS>COMPLETE');
    expect(replay.items.filter((u) => u.update?.$case === 'stepResult').map(describeUpdate)).toEqual([
      'first result "a"',
      'second result "b"',
    ]);

    const skipped = watch(taskId, true);
    expect(await skipped.ended).toEqual({ code: grpc.status.OK, error: null });
    expect(skipped.items).toEqual([]);
  });

  it('with skip_history sends only what happens after the call', async () => {
    const taskId = await create('quiet');
    await run('quiet.work', 'first', 1);
    const stream = watch(taskId, true);
    // Wait until the stream is established before changing anything.
    await new Promise((r) => setTimeout(r, 300));
    const cancelled = await unary(api.tasks.cancelTask.bind(api.tasks), { taskId, reason: 'enough' });
    expect(cancelled.task?.state).toBe(TaskState.TASK_STATE_CANCELLED);
    expect(await stream.ended).toEqual({ code: grpc.status.OK, error: null });
    expect(stream.items.map(describeUpdate)).toEqual(['second PENDING>CANCELLED', 'task IN_PROGRESS>CANCELLED']);
  });

  it('does not stop at a terminal state the task later left', async () => {
    const taskId = await create('reopened');
    const [a] = await engine.claim('reopened.work', 1);
    await engine.failed(a!, false);
    await unary(api.tasks.completeStep.bind(api.tasks), { stepId: a!.stepId, result: 'by hand', reason: 'fixed' });
    const stream = watch(taskId);
    await stream.atLeast(6);
    expect(stream.items.map(describeUpdate)).toContain('task IN_PROGRESS>ERROR');
    await run('reopened.work', 'second', 'done');
    expect((await stream.ended).code).toBe(grpc.status.OK);
    const all = stream.items.map(describeUpdate);
    expect(all).toContain('first result "by hand"');
    expect(all.at(-1)).toMatch(/^task .*>COMPLETE$/);
    const manual = stream.items.find((u) => u.update?.$case === 'stepResult' && u.update.value.stepName === 'first');
    expect(manual?.update).toMatchObject({ value: { attempt: 0 } });
  });

  it('answers NOT_FOUND for an unknown task and PERMISSION_DENIED for a worker token', async () => {
    const missing = collect(api.tasks.watchTask({ taskId: '01900000-0000-7000-8000-000000000000', skipHistory: false }, auth(TOKENS.client)));
    expect((await missing.ended).error?.reason).toBe('TASK_NOT_FOUND');
    const taskId = await create('quiet');
    const denied = collect(api.tasks.watchTask({ taskId, skipHistory: false }, auth(TOKENS.worker)));
    expect((await denied.ended).code).toBe(grpc.status.PERMISSION_DENIED);
  });
});

describe('streams across instances and SubscribeEvents against PostgreSQL', () => {
  let target: TestDatabase;
  let a: RunningTasker;
  let b: RunningTasker;
  let apiA: ReturnType<typeof clients>;
  let apiB: ReturnType<typeof clients>;
  let engine: EngineDriver;

  const subscribe = (req: Partial<SubscribeEventsRequest>, api = apiB) =>
    collect<Event>(api.tasks.subscribeEvents({ namespace: '', taskName: '', taskId: '', eventTypes: [], ...req }, auth(TOKENS.client)));
  const tableEvents = async (taskName: string, after = 0) => {
    const { rows } = await sql<{ id: string | number; event_type: string }>`
      select id, event_type from tasker_events where task_name = ${taskName} and id > ${after} order by id`.execute(a.database.db);
    return rows.map((r) => `${Number(r.id)} ${r.event_type}`);
  };
  const create = async (name: string, api = apiA) => (await unary(api.tasks.createTask.bind(api.tasks), createRequest(name))).task!.taskId;

  beforeAll(async () => {
    target = await createPostgresTestDatabase();
    a = await startTasker(apiConfig(target.url, { server: { host: '127.0.0.1', port: 0, instance_id: 'instance-a' } }), silent);
    // Instance B polls rarely: what it streams arrives through LISTEN/NOTIFY from A's commits.
    b = await startTasker(
      apiConfig(target.url, { server: { host: '127.0.0.1', port: 0, instance_id: 'instance-b' }, engine: { poll_interval_ms: 60_000 } }),
      silent,
    );
    apiA = clients(a.address);
    apiB = clients(b.address);
    engine = new EngineDriver(a.database.db);
    for (const name of ['crossing', 'resumed', 'filtered']) {
      await unary(apiA.templates.registerTemplate.bind(apiA.templates), { template: protoTemplate(name, [['first'], ['second', ['first']]]) });
    }
  });

  afterAll(async () => {
    apiA?.close();
    apiB?.close();
    await b?.stop();
    await a?.stop();
    await target?.close();
  });

  it('WatchTask on one instance follows changes committed through another', async () => {
    const taskId = await create('crossing');
    const stream = collect(apiB.tasks.watchTask({ taskId, skipHistory: false }, auth(TOKENS.client)));
    await stream.atLeast(1);
    const [first] = await engine.claim('crossing.work', 1);
    // Retryable: the task waits for the retry (a permanent failure would end the watch at ERROR).
    await engine.failed(first!, true);
    // The repair goes through instance A's API; instance B streams it.
    await unary(apiA.tasks.completeStep.bind(apiA.tasks), { stepId: first!.stepId, result: { via: 'a' }, reason: '' });
    const task = (await unary(apiA.tasks.getTask.bind(apiA.tasks), { taskId, omitResults: false })).task!;
    const second = task.steps.find((s) => s.name === 'second')!;
    await unary(apiA.tasks.resolveStep.bind(apiA.tasks), { stepId: second.stepId, reason: 'skip' });
    expect((await stream.ended).code).toBe(grpc.status.OK);
    const all = stream.items.map(describeUpdate);
    expect(all).toEqual(
      expect.arrayContaining(['first ENQUEUED>WAITING_FOR_RETRY', 'first result {"via":"a"}', 'second PENDING>RESOLVED_MANUALLY']),
    );
    expect(all.at(-1)).toMatch(/>COMPLETE$/);
    expectCursorOrder(stream.items);
  });

  it('SubscribeEvents without a cursor sends only later events, filtered', async () => {
    const before = await create('filtered');
    const live = subscribe({ taskName: 'filtered', eventTypes: ['task.created', 'task.cancelled'] });
    await new Promise((r) => setTimeout(r, 300));
    const after = await create('filtered');
    await unary(apiA.tasks.cancelTask.bind(apiA.tasks), { taskId: after, reason: '' });
    const events = await live.atLeast(2);
    live.cancel();
    expect(events.map((e) => [e.eventType, e.taskId])).toEqual([
      ['task.created', after],
      ['task.cancelled', after],
    ]);
    expect(events.every((e) => e.taskId !== before && e.namespace === 'e2e' && e.taskName === 'filtered')).toBe(true);
    expect(events[0]!.payload).toMatchObject({ to: 'pending' });
    expect(events[1]!.cursor).toBeGreaterThan(events[0]!.cursor);
  });

  it('SubscribeEvents resumes after a disconnect from the last cursor with nothing lost or repeated', async () => {
    await create('resumed');
    const first = subscribe({ taskName: 'resumed', afterCursor: 0 });
    const initial = await first.atLeast(1);
    first.cancel();
    await first.ended;
    const seen = [...first.items];
    const lastCursor = seen.at(-1)!.cursor;

    // While disconnected: more tasks, step changes and a cancellation.
    const t2 = await create('resumed');
    const [step] = await engine.claim('resumed.work', 2);
    await engine.started(step!);
    await engine.completed(step!, { ok: true });
    await unary(apiA.tasks.cancelTask.bind(apiA.tasks), { taskId: t2, reason: 'stop' });

    const resumed = subscribe({ taskName: 'resumed', afterCursor: lastCursor });
    const missed = await tableEvents('resumed', lastCursor);
    const replayed = await resumed.atLeast(missed.length);
    expect(replayed.map((e) => `${e.cursor} ${e.eventType}`)).toEqual(missed);

    // Live after the replay, on the same stream.
    const t3 = await create('resumed');
    const withLive = await resumed.atLeast(missed.length + 1);
    expect(withLive.at(-1)).toMatchObject({ eventType: 'task.created', taskId: t3 });
    resumed.cancel();

    const everything = [...seen, ...resumed.items].map((e) => `${e.cursor} ${e.eventType}`);
    expect(everything).toEqual(await tableEvents('resumed'));
    expect(initial[0]!.eventType).toBe('task.created');
  });

  it('refuses unknown event types and a cursor whose events are no longer retained', async () => {
    const bad = subscribe({ eventTypes: ['task.exploded'] });
    expect((await bad.ended).error).toMatchObject({ code: grpc.status.INVALID_ARGUMENT });

    const oldest = await tableEvents('filtered');
    const cut = Number(oldest[1]!.split(' ')[0]);
    await sql`delete from tasker_events where id <= ${cut}`.execute(a.database.db);
    const expired = subscribe({ afterCursor: 1 });
    const end = await expired.ended;
    expect(end.code).toBe(grpc.status.OUT_OF_RANGE);
    expect(end.error?.reason).toBe('CURSOR_EXPIRED');
    const fromOldest = subscribe({ afterCursor: 0, taskName: 'filtered' });
    const retained = await fromOldest.atLeast(1);
    fromOldest.cancel();
    expect(retained[0]!.cursor).toBeGreaterThan(cut);
    expect((await refusal(unary(apiA.tasks.getTask.bind(apiA.tasks), { taskId: 'x', omitResults: false }))).code).toBe(grpc.status.NOT_FOUND);
  });
});
