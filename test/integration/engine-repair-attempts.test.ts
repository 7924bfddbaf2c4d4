/**
 * Attempt numbers across operator repairs: RetryStep and RetryTask give a failed step a
 * fresh allowance of attempts but never reuse an attempt number, so the failure of the
 * first attempt after a repair is applied (not taken for a resend of the failure before
 * it), reports about attempts before the repair stay stale, and the retry policy —
 * attempts left, backoff, lease loss — counts from the start of the new allowance.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { getStepReadiness } from '../../src/store/readiness-reads.js';
import { getTaskDetails } from '../../src/store/task-reads.js';
import { listStepTransitions } from '../../src/store/transitions.js';
import { backends } from '../support/databases.js';
import type { Harness } from './engine-fixtures.js';
import { createHarness, handlerOf, NO_JITTER, tmpl } from './engine-fixtures.js';

describe.each(backends)('attempt numbers across repairs on $name', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(backend);
  });
  afterAll(async () => {
    await h?.close();
  });

  /** Fails step `a` of a fresh task permanently on attempt 1; returns the task id and the step id. */
  async function failedOnce(name: string): Promise<{ taskId: string; stepId: string }> {
    const task = await h.start(tmpl(name, [['a'], ['b', ['a']]]));
    const [first] = await h.claim(handlerOf(name));
    expect(first).toMatchObject({ stepName: 'a', attempt: 1 });
    expect(await h.fail(first!, { retryable: false })).toMatchObject({ status: 'accepted' });
    expect((await h.task(task.id)).state).toBe('error');
    return { taskId: task.id, stepId: first!.stepId };
  }

  /** After a repair: claims step `a`, expecting attempt `attempt`, fails it permanently, and checks it was applied. */
  async function failAgain(name: string, taskId: string, attempt: number): Promise<void> {
    const [again] = await h.claim(handlerOf(name));
    expect(again).toMatchObject({ stepName: 'a', attempt });
    const ack = await h.fail(again!, { retryable: false, errorClass: 'StillBroken' });
    expect(ack.status).toBe('accepted');
    const a = (await h.steps(taskId)).get('a')!;
    expect(a).toMatchObject({ state: 'error', attempts: attempt });
    expect(a.lastError).toMatchObject({ error_class: 'StillBroken', attempt, origin: 'worker' });
    expect((await h.task(taskId)).state).toBe('error');
    // The same report sent again is a resend of an applied outcome.
    expect((await h.fail(again!, { retryable: false, errorClass: 'StillBroken' })).status).toBe('duplicate');
  }

  /** Claims `a` as attempt `attempt`, completes it, then `b`; the task completes. */
  async function finish(name: string, taskId: string, attempt: number): Promise<void> {
    const [last] = await h.claim(handlerOf(name));
    expect(last).toMatchObject({ stepName: 'a', attempt });
    expect((await h.complete(last!)).status).toBe('accepted');
    const [b] = await h.claim(handlerOf(name));
    expect(b).toMatchObject({ stepName: 'b', attempt: 1 });
    await h.complete(b!);
    expect((await h.task(taskId)).state).toBe('complete');
  }

  test('RetryStep: the failure of the next attempt is applied, then a second retry completes', async () => {
    const name = 'attempts-retry-step';
    const { taskId, stepId } = await failedOnce(name);

    const repaired = await h.manager.retryStep(stepId, 'fixed');
    expect(repaired.step).toMatchObject({ state: 'pending', attempts: 1, attemptBase: 1 });
    await failAgain(name, taskId, 2);
    // A late report about the attempt before the repair names an attempt that is over.
    const [stale] = await h.report([
      { reportId: 'stale', stepId, attempt: 1, kind: 'failed', error: { errorClass: 'Old', message: 'old', retryable: false } },
    ]);
    expect(stale).toMatchObject({ status: 'rejected', reason: 'stale_attempt' });

    expect((await h.manager.retryStep(stepId, 'fixed for real')).step).toMatchObject({ attempts: 2, attemptBase: 2 });
    await finish(name, taskId, 3);

    // Every attempt has its own number in the audit trail.
    const audit = await listStepTransitions(h.t.database.db, stepId);
    expect(audit.filter((t) => t.event === 'enqueue').map((t) => t.attempt)).toEqual([1, 2, 3]);
    expect(audit.filter((t) => t.event === 'fail_permanent').map((t) => t.attempt)).toEqual([1, 2]);
    expect(audit.filter((t) => t.event === 'manual_retry').map((t) => t.attempt)).toEqual([1, 2]);
    const details = await getTaskDetails(h.t.database.db, taskId, { now: h.clock.now() });
    expect(details.steps.find((s) => s.name === 'a')).toMatchObject({ attempts: 3, attemptBase: 2, maxAttempts: 3 });
  });

  test('RetryTask: the same, through task retry', async () => {
    const name = 'attempts-retry-task';
    const { taskId, stepId } = await failedOnce(name);

    expect((await h.manager.retryTask(taskId, 'fixed')).state).toBe('pending');
    expect((await h.steps(taskId)).get('a')).toMatchObject({ state: 'pending', attempts: 1, attemptBase: 1 });
    await failAgain(name, taskId, 2);

    await h.manager.retryTask(taskId, 'fixed for real');
    expect((await h.steps(taskId)).get('a')).toMatchObject({ attempts: 2, attemptBase: 2 });
    await finish(name, taskId, 3);
    const audit = await listStepTransitions(h.t.database.db, stepId);
    expect(audit.filter((t) => t.event === 'enqueue').map((t) => t.attempt)).toEqual([1, 2, 3]);
  });

  test('the retry policy counts from the new allowance: attempts left, backoff, readiness, lease loss', async () => {
    const name = 'attempts-allowance';
    const retry = { ...NO_JITTER, maxAttempts: 2, baseMs: 1000 };
    const task = await h.start(tmpl(name, [['a', [], { retry }]]));
    const handler = handlerOf(name);
    const [first] = await h.claim(handler);
    await h.fail(first!);
    h.clock.advance(1000);
    const [second] = await h.claim(handler);
    await h.fail(second!);
    const exhausted = (await h.steps(task.id)).get('a')!;
    expect(exhausted).toMatchObject({ state: 'error', attempts: 2, lastError: { attempt: 2 } });

    await h.manager.retryStep(exhausted.id, 'again');
    // Two attempts past max_attempts, yet eligible: the new allowance has not been used.
    const [row] = await getStepReadiness(h.t.database.db, task.id, h.clock.now());
    expect(row).toMatchObject({ attempts: 2, attemptBase: 2, maxAttempts: 2, retryEligible: true, ready: true });

    const [third] = await h.claim(handler);
    expect(third).toMatchObject({ attempt: 3, maxAttempts: 4 });
    expect((await h.fail(third!)).status).toBe('accepted');
    const waiting = (await h.steps(task.id)).get('a')!;
    // The first failure of the allowance: retried after base_ms, as for attempt 1.
    expect(waiting.state).toBe('waiting_for_retry');
    expect(waiting.readyAt).toEqual(new Date(h.clock.now().getTime() + 1000));

    h.clock.advance(1000);
    const [fourth] = await h.claim(handler, { leaseMs: 500 });
    expect(fourth).toMatchObject({ attempt: 4, maxAttempts: 4 });
    h.clock.advance(500);
    expect((await h.reaper.tick()).expiredLeases).toBe(1);
    // The lost lease used the allowance's last attempt.
    expect((await h.steps(task.id)).get('a')).toMatchObject({
      state: 'error',
      attempts: 4,
      lastError: { attempt: 4, origin: 'lease_expired' },
    });
    expect((await h.task(task.id)).state).toBe('error');
  });
});
