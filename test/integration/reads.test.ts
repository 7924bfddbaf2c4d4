/**
 * The read side: GetTask details, ListTasks filters and keyset paging, step audit,
 * worker sessions, system health and analytics — on both backends, with tasks driven
 * through the real engine and time from a ManualClock.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { TaskState } from '../../src/domain/task-state.js';
import type { TaskTemplate } from '../../src/domain/template.js';
import { TaskQueries } from '../../src/engine/queries.js';
import { newId } from '../../src/domain/ids.js';
import { insertSession, closeSession, detachSession, markSessionDraining } from '../../src/store/sessions.js';
import { getTaskDetails, listTasks } from '../../src/store/task-reads.js';
import type { ListTasksOptions } from '../../src/store/task-reads.js';
import { backends } from '../support/databases.js';
import type { Harness } from './engine-fixtures.js';
import { createHarness, handlerOf, runToCompletion, tmpl } from './engine-fixtures.js';

const INSTANCE = 'reads-test-instance';

/** A session owned by {@link INSTANCE}, so the ownership-checked session writes apply to it. */
async function ownedSession(h: Harness, maxInFlight: number, handlers: string[] = ['x']): Promise<string> {
  const id = newId();
  await insertSession(h.t.database.db, {
    id,
    handleHash: createHash('sha256').update(randomBytes(16)).digest('hex'),
    instanceId: INSTANCE,
    now: h.clock.now(),
    expiresAt: new Date(h.clock.now().getTime() + 3_600_000),
    workerName: `reads-${maxInFlight}`,
    language: 'node',
    sdkVersion: '1.0.0',
    handlers,
    namespaces: [],
    labels: { zone: 'a' },
    maxInFlight,
  });
  return id;
}

/** Creates a task of a registered template with tags. */
async function createTagged(h: Harness, template: TaskTemplate, tags: string[]): Promise<string> {
  return (await h.manager.createTask({ template, tags })).task.id;
}

describe.each(backends)('task reads on $name', (backend) => {
  let h: Harness;
  let queries: TaskQueries;
  beforeAll(async () => {
    h = await createHarness(backend);
    queries = new TaskQueries(h.t.database, h.clock);
  });
  afterAll(async () => {
    await h?.close();
  });

  test('getTask returns the task, steps with parents, results and errors, edges by name and the execution context', async () => {
    const task = await h.start(tmpl('details', [['a'], ['b', ['a']], ['c', ['a']], ['d', ['b', 'c']]]));
    const handler = handlerOf('details');
    const [a] = await h.claim(handler);
    const startedAt = h.clock.now();
    await h.report([{ reportId: 'sa', stepId: a!.stepId, attempt: 1, kind: 'started' }]);
    h.clock.advance(1_500);
    await h.complete(a!, { n: 1 });
    const round2 = await h.claim(handler);
    const b = round2.find((x) => x.stepName === 'b')!;
    const c = round2.find((x) => x.stepName === 'c')!;
    await h.fail(b, { retryAfterMs: 5_000, errorClass: 'Timeout', message: 'upstream slow' });
    await h.complete(c, null);
    const now = h.clock.now();

    const details = await queries.getTask(task.id);
    expect(details.task).toMatchObject({ id: task.id, namespace: 'test', name: 'details', state: 'waiting_for_retry' });
    expect(details.steps.map((s) => [s.name, s.state, s.attempts, s.dependsOn])).toEqual([
      ['a', 'complete', 1, []],
      ['b', 'waiting_for_retry', 1, ['a']],
      ['c', 'complete', 1, ['a']],
      ['d', 'pending', 0, ['b', 'c']],
    ]);
    const [sa, sb, sc, sd] = details.steps;
    expect(sa).toMatchObject({ hasResult: true, result: { n: 1 }, lastError: null, startedAt, completedAt: new Date(startedAt.getTime() + 1_500) });
    expect(sa!.createdAt).toEqual(task.createdAt);
    expect(sb).toMatchObject({ hasResult: false, nextAttemptAt: new Date(now.getTime() + 5_000), completedAt: null });
    expect(sb!.lastError).toMatchObject({ error_class: 'Timeout', message: 'upstream slow', retryable: true });
    expect(sb).not.toHaveProperty('result');
    expect(sc).toMatchObject({ hasResult: true, result: null });
    expect(sd).toMatchObject({ hasResult: false, nextAttemptAt: null, startedAt: null });
    expect(details.edges.map((e) => [e.from, e.to])).toEqual([['a', 'b'], ['a', 'c'], ['b', 'd'], ['c', 'd']]);
    expect(details.edges[0]).toMatchObject({ fromStepId: sa!.id, toStepId: sb!.id });
    expect(details.executionContext).toEqual({
      taskId: task.id,
      taskState: 'waiting_for_retry',
      totalSteps: 4,
      pendingSteps: 1,
      inProgressSteps: 0,
      waitingForRetrySteps: 1,
      completedSteps: 2,
      failedSteps: 0,
      cancelledSteps: 0,
      readySteps: 0,
      executionStatus: 'waiting_for_retry',
      recommendedAction: 'wait_for_retry',
      completionPercentage: 50,
      healthStatus: 'recovering',
    });

    const lean = await queries.getTask(task.id, { includeResults: false });
    expect(lean.steps[0]).not.toHaveProperty('result');
    expect(lean.steps[0]!.hasResult).toBe(true);
    // Inside a caller's transaction the same read runs on that transaction.
    const inTrx = await h.t.database.db.transaction().execute((trx) => getTaskDetails(trx, task.id, { now }));
    expect(inTrx.steps.map((s) => s.state)).toEqual(details.steps.map((s) => s.state));
  });

  test('getTask of an unknown or malformed id is TASK_NOT_FOUND', async () => {
    await expect(queries.getTask(newId())).rejects.toMatchObject({ code: 'TASK_NOT_FOUND', category: 'not_found' });
    await expect(queries.getTask('not-a-uuid')).rejects.toMatchObject({ code: 'TASK_NOT_FOUND' });
    expect(await queries.getExecutionContext(newId())).toBeNull();
    expect(await queries.getStepReadiness(newId())).toEqual([]);
  });

  test('listTasks filters by namespace, name, states, tag and creation time, newest first', async () => {
    const one = tmpl('list-one', [['a']], { namespace: 'lista' });
    const two = tmpl('list-two', [['a']], { namespace: 'lista' });
    const three = tmpl('list-three', [['a']], { namespace: 'listb' });
    for (const t of [one, two, three]) await h.registry.register(t);
    const ids: string[] = [];
    const created: Date[] = [];
    for (let i = 0; i < 9; i++) {
      h.clock.advance(1_000);
      created.push(h.clock.now());
      ids.push(await createTagged(h, [one, two, three][i % 3]!, ['list-all', i % 2 === 0 ? 'list-even' : 'list-odd']));
    }
    await h.manager.cancelTask(ids[0]!, 'test');
    await h.manager.cancelTask(ids[3]!, 'test');
    expect(await h.claim(handlerOf('list-two'))).toHaveLength(3);

    const pick = async (o: ListTasksOptions): Promise<number[]> =>
      (await queries.listTasks({ tag: 'list-all', ...o })).tasks.map((t) => ids.indexOf(t.id));
    expect(await pick({})).toEqual([8, 7, 6, 5, 4, 3, 2, 1, 0]);
    expect(await pick({ namespace: 'lista' })).toEqual([7, 6, 4, 3, 1, 0]);
    expect(await pick({ namespace: 'lista', name: 'list-one' })).toEqual([6, 3, 0]);
    expect(await pick({ states: ['cancelled'] })).toEqual([3, 0]);
    expect(await pick({ states: ['in_progress', 'cancelled'] })).toEqual([7, 4, 3, 1, 0]);
    expect(await pick({ states: ['pending'], namespace: 'listb' })).toEqual([8, 5, 2]);
    expect(await pick({ tag: 'list-even' })).toEqual([8, 6, 4, 2, 0]);
    expect(await pick({ createdAfter: created[3], createdBefore: created[6] })).toEqual([5, 4, 3]);
    expect(await pick({ namespace: 'nowhere' })).toEqual([]);
    const page = await queries.listTasks({ tag: 'list-all', namespace: 'lista', name: 'list-one' });
    expect(page.nextPageToken).toBeNull();
    expect(page.tasks[0]).toMatchObject({ namespace: 'lista', name: 'list-one', tags: ['list-all', 'list-even'], state: 'pending' });
    await expect(queries.listTasks({ states: ['bogus' as TaskState] })).rejects.toMatchObject({ category: 'invalid_argument' });
  });

  test('listTasks pages across inserts without duplicates or gaps', async () => {
    const template = tmpl('paging', [['a']]);
    await h.registry.register(template);
    for (let i = 0; i < 12; i++) {
      if (i % 3 === 0) h.clock.advance(1_000); // three tasks share each created_at: the id breaks the tie
      await createTagged(h, template, ['paging']);
    }
    const all = (await queries.listTasks({ tag: 'paging', pageSize: 500 })).tasks.map((t) => t.id);
    expect(all).toHaveLength(12);

    const first = await queries.listTasks({ tag: 'paging', pageSize: 5 });
    expect(first.nextPageToken).toMatch(/^[A-Za-z0-9_-]+$/);
    h.clock.advance(1_000);
    await createTagged(h, template, ['paging']);
    await createTagged(h, template, ['paging']);
    const second = await queries.listTasks({ tag: 'paging', pageSize: 5, pageToken: first.nextPageToken });
    await createTagged(h, template, ['paging']);
    const third = await queries.listTasks({ tag: 'paging', pageSize: 5, pageToken: second.nextPageToken });
    expect(third.nextPageToken).toBeNull();
    const paged = [...first.tasks, ...second.tasks, ...third.tasks].map((t) => t.id);
    expect(paged).toEqual(all);
    expect(new Set(paged).size).toBe(12);
    expect((await queries.listTasks({ tag: 'paging' })).tasks).toHaveLength(15);
  });

  test('malformed or foreign page tokens and bad page sizes are rejected', async () => {
    const token = (await queries.listTasks({ tag: 'paging', pageSize: 2 })).nextPageToken!;
    const bad = [
      'garbage!!',
      Buffer.from('not json').toString('base64url'),
      Buffer.from('{"v":1}').toString('base64url'),
      Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(token, 'base64url').toString()), id: 'x' })).toString('base64url'),
      'A'.repeat(600),
    ];
    for (const pageToken of bad) {
      await expect(queries.listTasks({ tag: 'paging', pageToken }), pageToken).rejects.toMatchObject({ code: 'INVALID_PAGE_TOKEN' });
    }
    // A token is bound to the filters it was issued under.
    await expect(queries.listTasks({ tag: 'other', pageSize: 2, pageToken: token })).rejects.toMatchObject({ code: 'INVALID_PAGE_TOKEN' });
    // The page size may change between pages.
    expect((await queries.listTasks({ tag: 'paging', pageSize: 3, pageToken: token })).tasks).toHaveLength(3);
    await expect(listTasks(h.t.database.db, { pageSize: -1 })).rejects.toMatchObject({ code: 'INVALID_PAGE_SIZE' });
    await expect(listTasks(h.t.database.db, { pageSize: 2.5 })).rejects.toMatchObject({ code: 'INVALID_PAGE_SIZE' });
    const capped = await listTasks(h.t.database.db, { tag: 'paging', pageSize: 10_000 });
    expect(capped.tasks).toHaveLength(15);
    expect(capped.nextPageToken).toBeNull();
  });

  test('getStepAudit lists every transition in order; unknown steps are STEP_NOT_FOUND', async () => {
    const task = await h.start(tmpl('audit', [['a']]));
    const handler = handlerOf('audit');
    const [first] = await h.claim(handler);
    await h.report([{ reportId: 'st', stepId: first!.stepId, attempt: 1, kind: 'started' }]);
    await h.fail(first!, { retryAfterMs: 1_000, message: 'try again' });
    h.clock.advance(1_000);
    const [second] = await h.claim(handler);
    expect(second!.attempt).toBe(2);
    await h.complete(second!);
    const audit = await queries.getStepAudit(first!.stepId);
    expect(audit.map((t) => [t.from, t.to, t.event, t.attempt])).toEqual([
      [null, 'pending', 'create', 0],
      ['pending', 'enqueued', 'enqueue', 1],
      ['enqueued', 'in_progress', 'start', 1],
      ['in_progress', 'waiting_for_retry', 'fail_retry', 1],
      ['waiting_for_retry', 'enqueued', 'enqueue', 2],
      ['enqueued', 'complete', 'complete', 2],
    ]);
    expect(audit.every((t) => t.taskId === task.id && t.stepId === first!.stepId)).toBe(true);
    expect(audit[1]!.metadata).toMatchObject({ session_id: h.sessionId });
    for (let i = 1; i < audit.length; i++) expect(audit[i]!.at.getTime()).toBeGreaterThanOrEqual(audit[i - 1]!.at.getTime());
    await expect(queries.getStepAudit(newId())).rejects.toMatchObject({ code: 'STEP_NOT_FOUND', category: 'not_found' });
    await expect(queries.getStepAudit('nope')).rejects.toMatchObject({ code: 'STEP_NOT_FOUND' });
  });

  test('listWorkers shows live sessions with in-flight counts, and expired ones on request', async () => {
    const template = tmpl('workers', [['a'], ['b'], ['c']]);
    await h.start(template);
    const busy = await ownedSession(h, 5, [handlerOf('workers')]);
    expect(await h.claim(handlerOf('workers'), { sessionId: busy, limit: 2 })).toHaveLength(2);
    const closed = await ownedSession(h, 1);
    expect(await closeSession(h.t.database.db, { sessionId: closed, instanceId: INSTANCE, now: h.clock.now() })).toBe(true);
    const live = await queries.listWorkers();
    expect(live.map((s) => s.id)).toContain(busy);
    expect(live.map((s) => s.id)).not.toContain(closed);
    expect(live.find((s) => s.id === busy)).toMatchObject({ inFlight: 2, maxInFlight: 5, state: 'active', labels: { zone: 'a' } });
    expect((await queries.listWorkers({ includeExpired: true })).map((s) => s.id)).toContain(closed);
    expect((await queries.listWorkers({ handler: handlerOf('workers') })).map((s) => s.id)).toEqual([busy]);
    expect((await queries.listWorkers({ namespace: 'any' })).map((s) => s.id)).toContain(busy);
  });
});

describe.each(backends)('system health and analytics on $name', (backend) => {
  let h: Harness;
  let queries: TaskQueries;
  beforeAll(async () => {
    h = await createHarness(backend);
    queries = new TaskQueries(h.t.database, h.clock);
  });
  afterAll(async () => {
    await h?.close();
  });

  test('counts tasks and steps per state, ready steps and sessions; ranks the slowest work', async () => {
    const db = h.t.database.db;
    const since = h.clock.now();
    const t1 = await h.start(tmpl('h-done', [['a']]));
    await runToCompletion(h, handlerOf('h-done'));
    const t2 = await h.start(tmpl('h-cancel', [['a'], ['b', ['a']]]));
    await h.manager.cancelTask(t2.id, 'test');
    h.clock.advance(10_000);
    const t3 = await h.start(tmpl('h-ready', [['a'], ['b'], ['c']]));
    await h.start(tmpl('h-retry', [['a']]));
    const [r] = await h.claim(handlerOf('h-retry'));
    await h.fail(r!, { retryAfterMs: 600_000 });
    h.clock.advance(5_000);

    const s2 = await ownedSession(h, 4);
    const s3 = await ownedSession(h, 2);
    const s4 = await ownedSession(h, 8);
    const s5 = await ownedSession(h, 16);
    const own = { instanceId: INSTANCE, now: h.clock.now() };
    expect(await markSessionDraining(db, { sessionId: s3, ...own })).toBe(true);
    expect(await closeSession(db, { sessionId: s4, ...own })).toBe(true);
    expect(await detachSession(db, { sessionId: s5, ...own })).toBe(true);
    expect(s2).toBeTruthy();

    const health = await queries.getSystemHealth();
    expect(health).toEqual({
      at: h.clock.now(),
      tasksTotal: 4,
      tasks: {
        pending: 1, in_progress: 0, waiting_for_retry: 1, blocked_by_failures: 0,
        complete: 1, error: 0, cancelled: 1, resolved_manually: 0,
      },
      stepsTotal: 7,
      steps: {
        pending: 3, enqueued: 0, in_progress: 0, waiting_for_retry: 1,
        complete: 1, error: 0, cancelled: 2, resolved_manually: 0,
      },
      readySteps: 3,
      oldestReadyAt: t3.createdAt,
      oldestReadyAgeMs: 5_000,
      // The harness session (max_in_flight 1) and s2 are active and connected; s3 drains;
      // s4 is closed; s5 is active but detached.
      sessions: { active: 3, draining: 1, connected: 3, inFlightCapacity: 1 + 4 + 2 },
    });

    // Slow work in the next minute: three steps of 1.0, 3.0 and 3.5 s.
    h.clock.set(new Date(since.getTime() + 60_000));
    const t5 = await h.start(tmpl('h-slow', [['x'], ['y'], ['z']]));
    const batch = await h.claim(handlerOf('h-slow'));
    await h.report(batch.map((a) => ({ reportId: `s-${a.stepName}`, stepId: a.stepId, attempt: a.attempt, kind: 'started' as const })));
    const by = new Map(batch.map((a) => [a.stepName, a]));
    h.clock.advance(1_000);
    await h.complete(by.get('y')!);
    h.clock.advance(2_000);
    await h.complete(by.get('x')!);
    h.clock.advance(500);
    await h.complete(by.get('z')!);

    const analytics = await queries.getAnalytics({ since, limit: 2 });
    expect(analytics.slowestSteps.map((s) => [s.name, s.durationMs])).toEqual([['z', 3_500], ['x', 3_000]]);
    expect(analytics.slowestSteps[0]).toMatchObject({ taskId: t5.id, handler: handlerOf('h-slow'), namespace: 'test', taskName: 'h-slow', attempts: 1 });
    expect(analytics.slowestTasks.map((t) => [t.taskId, t.durationMs])).toEqual([[t5.id, 3_500], [t1.id, 0]]);
    expect(analytics.throughput.map((m) => [m.minute.getTime() - since.getTime(), m.tasksFinished, m.tasksCompleted, m.stepsFinished, m.stepsCompleted])).toEqual([
      [0, 2, 1, 3, 1],
      [60_000, 1, 1, 3, 3],
    ]);
    expect(analytics.tasksFinished).toBe(3);
    expect(analytics.stepsFinished).toBe(6);
    const windowMinutes = (h.clock.now().getTime() - since.getTime()) / 60_000;
    expect(analytics.tasksPerMinute).toBeCloseTo(3 / windowMinutes, 10);
    expect(analytics.stepsPerMinute).toBeCloseTo(6 / windowMinutes, 10);
    // The default limit; the step completed without a StepStarted (t1's) has no duration.
    expect((await queries.getAnalytics({ since })).slowestSteps.map((s) => s.name)).toEqual(['z', 'x', 'y']);
    const later = await queries.getAnalytics({ since: new Date(since.getTime() + 60_000) });
    expect(later.slowestTasks.map((t) => t.taskId)).toEqual([t5.id]);
    expect(later.throughput).toHaveLength(1);
    await expect(queries.getAnalytics({ since, limit: -1 })).rejects.toMatchObject({ code: 'INVALID_LIMIT' });
  });
});
