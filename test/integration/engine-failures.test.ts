import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readEvents } from '../../src/store/events.js';
import { listStepTransitions } from '../../src/store/transitions.js';
import { backends } from '../support/databases.js';
import type { Harness } from './engine-fixtures.js';
import { createHarness, handlerOf, NO_JITTER, tmpl } from './engine-fixtures.js';

describe.each(backends)('engine failures, retries, leases and reports on $name', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(backend);
  });
  afterAll(async () => {
    await h?.close();
  });

  test('a retryable failure backs off exponentially, then the step succeeds', async () => {
    const name = 'backoff';
    const task = await h.start(tmpl(name, [['only', [], { retry: { ...NO_JITTER, baseMs: 1000, maxAttempts: 3 } }]]));
    const handler = handlerOf(name);
    const [first] = await h.claim(handler);
    expect(first!.attempt).toBe(1);
    expect((await h.fail(first!)).status).toBe('accepted');
    let step = (await h.steps(task.id)).get('only')!;
    expect(step.state).toBe('waiting_for_retry');
    expect(step.readyAt).toEqual(new Date(h.clock.now().getTime() + 1000));
    expect(step.lastError).toMatchObject({ error_class: 'Boom', attempt: 1, origin: 'worker' });
    expect((await h.task(task.id)).state).toBe('waiting_for_retry');

    h.clock.advance(999);
    expect(await h.claim(handler)).toHaveLength(0);
    h.clock.advance(1);
    const [second] = await h.claim(handler);
    expect(second!.attempt).toBe(2);
    expect((await h.task(task.id)).state).toBe('in_progress');
    await h.fail(second!);
    step = (await h.steps(task.id)).get('only')!;
    expect(step.readyAt).toEqual(new Date(h.clock.now().getTime() + 2000));

    h.clock.advance(2000);
    const [third] = await h.claim(handler);
    expect(third!.attempt).toBe(3);
    expect((await h.complete(third!, { ok: true })).status).toBe('accepted');
    step = (await h.steps(task.id)).get('only')!;
    expect(step).toMatchObject({ state: 'complete', attempts: 3, result: { ok: true } });
    expect((await h.task(task.id)).state).toBe('complete');
    const kinds = (await readEvents(h.t.database.db, { taskId: task.id })).map((e) => e.kind);
    expect(kinds.filter((k) => k === 'step.backoff')).toHaveLength(2);
    expect(kinds).toContain('task.waiting_for_retry');
    expect(kinds).toContain('task.resumed');
  });

  test("the worker's retry_after_ms wins over the policy", async () => {
    const name = 'retry-after';
    const task = await h.start(tmpl(name, [['only']]));
    const [a] = await h.claim(handlerOf(name));
    await h.fail(a!, { retryAfterMs: 50 });
    expect((await h.steps(task.id)).get('only')!.readyAt).toEqual(new Date(h.clock.now().getTime() + 50));
    h.clock.advance(50);
    expect(await h.claim(handlerOf(name))).toHaveLength(1);
  });

  test('a permanent failure blocks the task while others run, then fails it', async () => {
    const name = 'permanent';
    const task = await h.start(tmpl(name, [['a'], ['b'], ['c', ['a']]]));
    const batch = await h.claim(handlerOf(name));
    const a = batch.find((x) => x.stepName === 'a')!;
    const b = batch.find((x) => x.stepName === 'b')!;
    await h.fail(a, { retryable: false, errorClass: 'Invalid', code: 'E_BAD' });
    expect((await h.steps(task.id)).get('a')).toMatchObject({ state: 'error', attempts: 1 });
    expect((await h.task(task.id)).state).toBe('blocked_by_failures');
    await h.complete(b);
    const failed = await h.task(task.id);
    expect(failed.state).toBe('error');
    expect(failed.completedAt).not.toBeNull();
    expect((await h.steps(task.id)).get('c')!.state).toBe('pending');
    const kinds = (await readEvents(h.t.database.db, { taskId: task.id })).map((e) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(['step.failed', 'task.blocked', 'task.failed']));
  });

  test('a retryable failure of the last attempt exhausts the step', async () => {
    const name = 'exhausted';
    const task = await h.start(tmpl(name, [['only', [], { retry: { ...NO_JITTER, maxAttempts: 1 } }]]));
    const [a] = await h.claim(handlerOf(name));
    await h.fail(a!);
    expect((await h.steps(task.id)).get('only')!.state).toBe('error');
    expect((await h.task(task.id)).state).toBe('error');
    const failed = (await readEvents(h.t.database.db, { taskId: task.id })).find((e) => e.kind === 'step.failed');
    expect(failed?.payload).toMatchObject({ outcome: 'exhausted', attempt: 1 });
  });

  test('an expired lease returns the step to ready with the attempt counted; the old holder is stale', async () => {
    const name = 'lease';
    const task = await h.start(tmpl(name, [['only', [], { retry: { ...NO_JITTER, maxAttempts: 2 } }]]));
    const [first] = await h.claim(handlerOf(name), { leaseMs: 1000 });
    h.clock.advance(1000);
    expect((await h.reaper.tick()).expiredLeases).toBe(1);
    const step = (await h.steps(task.id)).get('only')!;
    expect(step).toMatchObject({ state: 'waiting_for_retry', attempts: 1, readyAt: h.clock.now() });
    expect(step.lastError).toMatchObject({ origin: 'lease_expired', attempt: 1 });

    const other = await h.newSession();
    const [second] = await h.claim(handlerOf(name), { sessionId: other, leaseMs: 1000 });
    expect(second!.attempt).toBe(2);
    const [stale] = await h.report([{ reportId: 'late', stepId: first!.stepId, attempt: 1, kind: 'completed', result: 1 }]);
    expect(stale).toMatchObject({ status: 'rejected', reason: 'stale_attempt' });

    h.clock.advance(1000);
    await h.reaper.tick();
    expect((await h.steps(task.id)).get('only')!.state).toBe('error');
    expect((await h.task(task.id)).state).toBe('error');
    const kinds = (await listStepTransitions(h.t.database.db, step.id)).map((t) => t.event);
    expect(kinds.filter((k) => k === 'lease_expired')).toHaveLength(2);
  });

  test('a step past its timeout fails through the retry policy', async () => {
    const name = 'timeout';
    const task = await h.start(tmpl(name, [['slow', [], { timeoutMs: 500, retry: { ...NO_JITTER, baseMs: 1000 } }]]));
    const [a] = await h.claim(handlerOf(name));
    expect(a!.deadline).toEqual(new Date(h.clock.now().getTime() + 500));
    await h.report([{ reportId: 's', stepId: a!.stepId, attempt: 1, kind: 'started' }]);
    h.clock.advance(499);
    expect((await h.reaper.tick()).timedOut).toBe(0);
    h.clock.advance(1);
    expect((await h.reaper.tick()).timedOut).toBe(1);
    const step = (await h.steps(task.id)).get('slow')!;
    expect(step).toMatchObject({ state: 'waiting_for_retry', attempts: 1, deadlineAt: null });
    expect(step.readyAt).toEqual(new Date(h.clock.now().getTime() + 1000));
    expect(step.lastError).toMatchObject({ origin: 'timeout', error_class: 'StepTimeout' });
    const [late] = await h.report([{ reportId: 'late', stepId: a!.stepId, attempt: 1, kind: 'completed', result: 1 }]);
    expect(late).toMatchObject({ status: 'rejected', reason: 'step_not_running' });
    const kinds = (await readEvents(h.t.database.db, { taskId: task.id })).map((e) => e.kind);
    expect(kinds).toContain('step.timed_out');
  });

  test('an expired session loses its leases at once', async () => {
    const name = 'session-expiry';
    const task = await h.start(tmpl(name, [['only']]));
    const session = await h.newSession();
    await h.claim(handlerOf(name), { sessionId: session, leaseMs: 3_600_000 });
    const db = h.t.database.db;
    await sql`update worker_sessions set expires_at = ${h.clock.now()} where id = ${session}::uuid`.execute(db);
    h.clock.advance(1);
    const result = await h.reaper.tick();
    expect(result.expiredSessions).toEqual([session]);
    expect(result.expiredLeases).toBe(1);
    expect((await h.steps(task.id)).get('only')!.state).toBe('waiting_for_retry');
    const { rows } = await sql<{ state: string }>`select state from worker_sessions where id = ${session}::uuid`.execute(db);
    expect(rows[0]!.state).toBe('expired');
  });

  test('duplicate, stale, foreign, unknown and malformed reports change nothing', async () => {
    const name = 'reports';
    const task = await h.start(tmpl(name, [['a'], ['b'], ['c']]));
    const batch = await h.claim(handlerOf(name));
    const [a, b, c] = ['a', 'b', 'c'].map((n) => batch.find((x) => x.stepName === n)!);
    const other = await h.newSession();
    const acks = await h.report([
      { reportId: '1', stepId: a!.stepId, attempt: 1, kind: 'started' },
      { reportId: '2', stepId: a!.stepId, attempt: 1, kind: 'progress', seq: 1, payload: { pct: 50 } },
      { reportId: '3', stepId: a!.stepId, attempt: 1, kind: 'progress', seq: 1, payload: { pct: 50 } },
      { reportId: '4', stepId: a!.stepId, attempt: 1, kind: 'completed', resultJson: '{"v":1}' },
      { reportId: '5', stepId: a!.stepId, attempt: 1, kind: 'completed', resultJson: '{"v":2}' },
      { reportId: '6', stepId: a!.stepId, attempt: 1, kind: 'started' },
      { reportId: '7', stepId: b!.stepId, attempt: 2, kind: 'completed', result: 1 },
      { reportId: '8', stepId: '01900000-0000-7000-8000-000000000000', attempt: 1, kind: 'completed', result: 1 },
      { reportId: '9', stepId: c!.stepId, attempt: 1, kind: 'completed', resultJson: '{not json' },
      { reportId: '10', stepId: b!.stepId, attempt: 1, kind: 'failed', error: { errorClass: 'X', message: 'x', retryable: true } },
      { reportId: '11', stepId: b!.stepId, attempt: 1, kind: 'failed', error: { errorClass: 'X', message: 'x', retryable: true } },
    ]);
    expect(acks.map((x) => [x.reportId, x.status, x.reason])).toEqual([
      ['1', 'accepted', undefined],
      ['2', 'accepted', undefined],
      ['3', 'duplicate', undefined],
      ['4', 'accepted', undefined],
      ['5', 'duplicate', undefined],
      ['6', 'duplicate', undefined],
      ['7', 'rejected', 'stale_attempt'],
      ['8', 'rejected', 'unknown_step'],
      ['9', 'rejected', 'invalid_report'],
      ['10', 'accepted', undefined],
      ['11', 'duplicate', undefined],
    ]);
    const [foreign] = await h.report([{ reportId: 'f', stepId: c!.stepId, attempt: 1, kind: 'completed', result: 1 }], other);
    expect(foreign).toMatchObject({ status: 'rejected', reason: 'not_leased_to_session' });
    // A resend of already-committed reports in a later batch is acknowledged as duplicate.
    const resent = await h.report([
      { reportId: '4', stepId: a!.stepId, attempt: 1, kind: 'completed', resultJson: '{"v":1}' },
      { reportId: '10', stepId: b!.stepId, attempt: 1, kind: 'failed', error: { errorClass: 'X', message: 'x', retryable: true } },
      { reportId: '2', stepId: a!.stepId, attempt: 1, kind: 'progress', seq: 1, payload: { pct: 50 } },
    ]);
    expect(resent.map((x) => x.status)).toEqual(['duplicate', 'duplicate', 'rejected']);

    const steps = await h.steps(task.id);
    expect(steps.get('a')).toMatchObject({ state: 'complete', result: { v: 1 } });
    expect(steps.get('b')).toMatchObject({ state: 'waiting_for_retry', attempts: 1 });
    expect(steps.get('c')).toMatchObject({ state: 'enqueued' });
    const db = h.t.database.db;
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from step_progress where step_id = ${a!.stepId}::uuid`.execute(db);
    expect(rows[0]!.n).toBe(1);
    const completions = (await listStepTransitions(db, a!.stepId)).filter((t) => t.to === 'complete');
    expect(completions).toHaveLength(1);
    expect((await h.task(task.id)).stepCounts.byState).toMatchObject({ complete: 1, waiting_for_retry: 1, enqueued: 1 });
  });
});
