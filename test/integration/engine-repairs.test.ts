import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AlreadyExistsError, FailedPreconditionError, NotFoundError, ValidationError } from '../../src/domain/errors.js';
import { compareVersions } from '../../src/engine/template-registry.js';
import { readEvents } from '../../src/store/events.js';
import { backends } from '../support/databases.js';
import type { Harness } from './engine-fixtures.js';
import { createHarness, handlerOf, tmpl } from './engine-fixtures.js';

async function refusal(promise: Promise<unknown>): Promise<FailedPreconditionError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FailedPreconditionError);
  return err as FailedPreconditionError;
}

describe.each(backends)('engine cancel, repairs, identity and templates on $name', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(backend);
  });
  afterAll(async () => {
    await h?.close();
  });

  test('cancel reports the running steps, cancels the rest, and is idempotent', async () => {
    const name = 'cancel';
    const task = await h.start(tmpl(name, [['a'], ['b'], ['c', ['a']]]));
    const batch = await h.claim(handlerOf(name));
    const a = batch.find((x) => x.stepName === 'a')!;
    await h.report([{ reportId: 's', stepId: a.stepId, attempt: 1, kind: 'started' }]);
    const result = await h.manager.cancelTask(task.id, 'no longer needed');
    expect(result.task.state).toBe('cancelled');
    expect(result.task.stepCounts.byState.cancelled).toBe(3);
    expect(result.cancelledSteps.map((s) => s.stepId).sort()).toEqual(batch.map((x) => x.stepId).sort());
    expect(result.cancelledSteps.every((s) => s.sessionId === h.sessionId && s.attempt === 1)).toBe(true);

    const [late] = await h.report([{ reportId: 'late', stepId: a.stepId, attempt: 1, kind: 'completed', result: 1 }]);
    expect(late).toMatchObject({ status: 'rejected', reason: 'task_cancelled' });
    const again = await h.manager.cancelTask(task.id);
    expect(again.cancelledSteps).toEqual([]);
    expect(await h.claim(handlerOf(name))).toHaveLength(0);
    const kinds = (await readEvents(h.t.database.db, { taskId: task.id })).map((e) => e.kind);
    expect(kinds.filter((k) => k === 'step.cancelled')).toHaveLength(3);
    expect(kinds.at(-1)).toBe('task.cancelled');

    const done = await h.start(tmpl('cancel-done', [['x']]));
    const [x] = await h.claim(handlerOf('cancel-done'));
    await h.complete(x!);
    const err = await refusal(h.manager.cancelTask(done.id));
    expect(err.code).toBe('TASK_NOT_CANCELLABLE');
    expect(err.message).toContain('complete');
    await expect(h.manager.cancelTask('01900000-0000-7000-8000-000000000000')).rejects.toBeInstanceOf(NotFoundError);
  });

  test('retryStep runs a failed step again with a fresh allowance and refuses other states', async () => {
    const name = 'retry-step';
    const task = await h.start(tmpl(name, [['a'], ['b', ['a']]]));
    const [a] = await h.claim(handlerOf(name));
    await h.fail(a!, { retryable: false });
    expect((await h.task(task.id)).state).toBe('error');

    const pending = (await h.steps(task.id)).get('b')!;
    const err = await refusal(h.manager.retryStep(pending.id, 'try'));
    expect(err.code).toBe('STEP_NOT_RETRYABLE');
    expect(err.message).toContain('pending');

    const repaired = await h.manager.retryStep(a!.stepId, 'fixed the bug');
    expect(repaired.step).toMatchObject({ state: 'pending', attempts: 1, attemptBase: 1 });
    expect(repaired.task.state).toBe('pending');
    expect(repaired.task.completedAt).toBeNull();
    const [again] = await h.claim(handlerOf(name));
    expect(again).toMatchObject({ stepName: 'a', attempt: 2 });
    await h.complete(again!);
    const [b] = await h.claim(handlerOf(name));
    await h.complete(b!);
    expect((await h.task(task.id)).state).toBe('complete');
    const kinds = (await readEvents(h.t.database.db, { taskId: task.id })).map((e) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(['step.retry_requested', 'task.retry_requested', 'task.completed']));
    expect((await refusal(h.manager.retryStep(a!.stepId))).message).toContain('complete');
  });

  test('resolveStep releases the children like a completion; completeStep hands them the operator result', async () => {
    const name = 'resolve';
    const task = await h.start(tmpl(name, [['a'], ['b'], ['c', ['a', 'b']]]));
    const batch = await h.claim(handlerOf(name));
    await h.fail(batch.find((x) => x.stepName === 'a')!, { retryable: false });
    const b = batch.find((x) => x.stepName === 'b')!;
    await h.fail(b, { retryable: false });
    expect((await h.task(task.id)).state).toBe('error');

    const resolved = await h.manager.resolveStep(batch.find((x) => x.stepName === 'a')!.stepId, 'done by hand');
    expect(resolved.step.state).toBe('resolved_manually');
    // c still waits for b, which failed: nothing can run, so the task stays in error.
    expect(resolved.task.state).toBe('error');
    const completed = await h.manager.completeStep(b.stepId, { manual: 42 }, 'operator supplied');
    expect(completed.step).toMatchObject({ state: 'complete', result: { manual: 42 } });
    expect(completed.task.state).toBe('in_progress');

    const [c] = await h.claim(handlerOf(name));
    expect(c!.stepName).toBe('c');
    expect(JSON.parse(c!.ancestorResultsJson)).toEqual({ a: null, b: { manual: 42 } });
    const err = await refusal(h.manager.resolveStep(c!.stepId));
    expect(err.code).toBe('STEP_NOT_RESOLVABLE');
    expect(err.message).toContain('enqueued');
    expect((await refusal(h.manager.completeStep(b.stepId, 1))).code).toBe('STEP_NOT_COMPLETABLE');
    await h.complete(c!);
    expect((await h.task(task.id)).state).toBe('complete');
    const kinds = (await readEvents(h.t.database.db, { taskId: task.id })).map((e) => e.kind);
    expect(kinds).toEqual(expect.arrayContaining(['step.resolved_manually', 'step.completed_manually']));
  });

  test('retryTask retries every failed step; refused when nothing failed', async () => {
    const name = 'retry-task';
    const task = await h.start(tmpl(name, [['a'], ['b'], ['c']]));
    const batch = await h.claim(handlerOf(name));
    for (const x of batch.filter((y) => y.stepName !== 'c')) await h.fail(x, { retryable: false });
    expect((await h.task(task.id)).state).toBe('blocked_by_failures');
    const retried = await h.manager.retryTask(task.id, 'upstream fixed');
    expect(retried.state).toBe('in_progress');
    expect(retried.stepCounts.byState).toMatchObject({ pending: 2, enqueued: 1, error: 0 });
    expect((await h.claim(handlerOf(name))).map((x) => x.stepName).sort()).toEqual(['a', 'b']);
    const err = await refusal(h.manager.retryTask(task.id));
    expect(err.code).toBe('TASK_NOT_RETRYABLE');
    expect(err.message).toContain('in_progress');
  });

  test('repairs are refused on a cancelled task', async () => {
    const name = 'repair-cancelled';
    const task = await h.start(tmpl(name, [['a'], ['b']]));
    const batch = await h.claim(handlerOf(name));
    await h.fail(batch[0]!, { retryable: false });
    await h.manager.cancelTask(task.id);
    const err = await refusal(h.manager.retryStep(batch[0]!.stepId));
    expect(err.code).toBe('TASK_NOT_ACTIVE');
    expect(err.message).toContain('cancelled');
  });

  test('identity: strict returns the existing task, caller_provided needs a key, always_unique does not dedupe', async () => {
    const strict = tmpl('identity-strict', [['a']], { identityStrategy: 'strict' });
    await h.registry.register(strict);
    const first = await h.manager.createTask({ template: strict, context: { order: 1, lines: [1, 2] } });
    const same = await h.manager.createTask({ template: strict, context: { lines: [1, 2], order: 1 } });
    const other = await h.manager.createTask({ template: strict, context: { order: 2 } });
    expect(first.created).toBe(true);
    expect(same).toMatchObject({ created: false, task: { id: first.task.id } });
    expect(other.created).toBe(true);

    const keyed = tmpl('identity-keyed', [['a']], { identityStrategy: 'caller_provided' });
    await h.registry.register(keyed);
    await expect(h.manager.createTask({ template: keyed, context: {} })).rejects.toMatchObject({
      code: 'IDEMPOTENCY_KEY_REQUIRED',
    });
    const k1 = await h.manager.createTask({ template: keyed, context: { a: 1 }, idempotencyKey: 'order-7' });
    const k2 = await h.manager.createTask({ template: keyed, context: { a: 2 }, idempotencyKey: 'order-7' });
    expect(k2).toMatchObject({ created: false, task: { id: k1.task.id } });

    const unique = tmpl('identity-unique', [['a']]);
    await h.registry.register(unique);
    const u1 = await h.manager.createTask({ template: unique, context: {} });
    const u2 = await h.manager.createTask({ template: unique, context: {} });
    expect(u1.task.id).not.toBe(u2.task.id);

    // Racing creations of one identity store one task.
    const racers = await Promise.all(
      Array.from({ length: 4 }, () => h.manager.createTask({ template: strict, context: { order: 99 } })),
    );
    expect(new Set(racers.map((r) => r.task.id)).size).toBe(1);
    expect(racers.filter((r) => r.created)).toHaveLength(1);
  });

  test('a context violating the schema is refused and stores nothing', async () => {
    const schema = {
      type: 'object',
      required: ['customer_id'],
      properties: { customer_id: { type: 'integer' }, email: { type: 'string', format: 'email' } },
    };
    const t = tmpl('schema', [['a']], { contextSchema: schema });
    await h.registry.register(t);
    const err = await h.manager.createTask({ template: t, context: { email: 'nope' } }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).code).toBe('CONTEXT_INVALID');
    expect((err as ValidationError).violations.map((v) => v.path).sort()).toEqual(['/customer_id', '/email']);
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from tasks where namespace = 'test' and name = 'schema'`.execute(h.t.database.db);
    expect(rows[0]!.n).toBe(0);
    expect((await h.manager.createTask({ template: t, context: { customer_id: 7 } })).created).toBe(true);
  });

  test('templates: same body is a no-op, another body conflicts, the latest release wins, unknown is not found', async () => {
    const v1 = tmpl('versions', [['a']]);
    expect((await h.registry.register(v1)).created).toBe(true);
    expect((await h.registry.register(v1)).created).toBe(false);
    await expect(h.registry.register({ ...v1, description: 'changed' })).rejects.toMatchObject({
      code: 'TEMPLATE_VERSION_CONFLICT',
    });
    await expect(h.registry.register({ ...v1, description: 'changed' })).rejects.toBeInstanceOf(AlreadyExistsError);
    for (const version of ['1.10.0', '1.9.0', '2.0.0-rc.1']) await h.registry.register({ ...v1, version });
    expect((await h.registry.get({ namespace: 'test', name: 'versions' })).version).toBe('1.10.0');
    expect((await h.registry.get({ namespace: 'test', name: 'versions', version: '1.9.0' })).version).toBe('1.9.0');
    const created = await h.manager.createTask({ template: { namespace: 'test', name: 'versions', version: '' } });
    expect(created.task.version).toBe('1.10.0');
    await expect(h.registry.get({ namespace: 'test', name: 'nope' })).rejects.toMatchObject({ code: 'TEMPLATE_NOT_FOUND' });
    expect((await h.registry.list({ namespace: 'test' })).some((t) => t.name === 'versions')).toBe(true);
    expect(h.registry.validate({ ...v1, steps: [] }).length).toBeGreaterThan(0);
  });

  test('loadDirectories registers YAML files with environment overrides and names a broken file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tasker-templates-'));
    try {
      await mkdir(join(dir, 'nested'));
      await writeFile(
        join(dir, 'nested', 'loaded.yaml'),
        [
          'namespace: test',
          'name: loaded',
          'version: 1.0.0',
          'steps:',
          '  - name: fetch',
          '    handler: loaded.fetch',
          '    timeout_ms: 1000',
          'environments:',
          '  test:',
          '    steps:',
          '      fetch:',
          '        timeout_ms: 50',
        ].join('\n'),
      );
      const loaded = await h.registry.loadDirectories([dir], 'test');
      expect(loaded).toHaveLength(1);
      expect(loaded[0]!.template.steps[0]!.timeoutMs).toBe(50);
      await writeFile(join(dir, 'broken.yaml'), 'namespace: test\nname: broken\nsteps: []\n');
      await expect(h.registry.loadDirectories([dir], 'test')).rejects.toThrow(/broken\.yaml/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('compareVersions', () => {
  test.each([
    ['1.10.0', '1.9.0', 1],
    ['1.0.0', '1.0.0-rc.1', 1],
    ['1.0.0-rc.2', '1.0.0-rc.10', -1],
    ['2', '10', -1],
    ['1.0.0+build.5', '1.0.0', 0],
    ['2024-06', '2024-05', 1],
  ])('%s vs %s', (a, b, sign) => {
    expect(Math.sign(compareVersions(a, b))).toBe(sign);
  });
});
