/**
 * TaskService and AdminService on the wire against PostgreSQL: creating tasks (happy
 * path, unknown template, a context refused by the schema with nothing stored, strict
 * identity), reading and listing them (filters, pages), cancelling (Cancel reaches the
 * worker holding a step), the repairs and the FAILED_PRECONDITION they answer from a
 * wrong state, tokens, roles and namespaces, the operator views, and the details a
 * worker sends with a failure coming back with the stored error.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningTasker } from '../../src/app.js';
import { startTasker } from '../../src/app.js';
import { StepState, TaskState } from '../../src/gen/tasker/v1/common.js';
import { SessionState } from '../../src/gen/tasker/v1/admin.js';
import { AckStatus } from '../../src/gen/tasker/v1/worker.js';
import type { CreateTaskRequest, Task } from '../../src/gen/tasker/v1/task.js';
import { IdentityStrategy } from '../../src/gen/tasker/v1/template.js';
import type { TaskTemplate } from '../../src/gen/tasker/v1/template.js';
import type { TestDatabase } from '../support/databases.js';
import { createPostgresTestDatabase } from '../support/databases.js';
import { apiConfig, clients, EngineDriver, eventually, protoTemplate, refusal, silent, TOKENS, unary } from './api-client.js';
import { RawWorker } from './raw-worker.js';

const LIMITED_TOKEN = 'limited-client-token-0123';

function createRequest(name: string, context: Record<string, unknown> = {}, extra: Partial<CreateTaskRequest> = {}): CreateTaskRequest {
  return {
    template: { namespace: 'e2e', name, version: '' },
    context,
    priority: 0,
    tags: [],
    initiator: 'e2e',
    sourceSystem: 'vitest',
    reason: 'testing',
    correlationId: '',
    idempotencyKey: '',
    ...extra,
  };
}

describe('TaskService and AdminService against PostgreSQL', () => {
  let target: TestDatabase;
  let tasker: RunningTasker;
  let api: ReturnType<typeof clients>;
  let engine: EngineDriver;
  const workers: RawWorker[] = [];

  const register = (template: TaskTemplate) => unary(api.templates.registerTemplate.bind(api.templates), { template });
  const create = (req: CreateTaskRequest, token: string | null = TOKENS.client) => unary(api.tasks.createTask.bind(api.tasks), req, token);
  const getTask = async (taskId: string, omitResults = false): Promise<Task> =>
    (await unary(api.tasks.getTask.bind(api.tasks), { taskId, omitResults })).task as Task;
  const listTasks = (req: Partial<Parameters<typeof api.tasks.listTasks>[0]>, token: string = TOKENS.client) =>
    unary(
      api.tasks.listTasks.bind(api.tasks),
      { namespace: '', name: '', states: [], tag: '', pageSize: 0, pageToken: '', ...req },
      token,
    );
  const stepOf = (task: Task, name: string) => {
    const step = task.steps.find((s) => s.name === name);
    if (!step) throw new Error(`no step ${name}`);
    return step;
  };

  beforeAll(async () => {
    target = await createPostgresTestDatabase();
    tasker = await startTasker(
      apiConfig(target.url, {
        auth: {
          enabled: true,
          tokens: [
            { name: 'client', token: TOKENS.client, roles: ['client'] },
            { name: 'worker', token: TOKENS.worker, roles: ['worker'] },
            { name: 'admin', token: TOKENS.admin, roles: ['admin'] },
            { name: 'limited', token: LIMITED_TOKEN, roles: ['client', 'admin'], namespaces: ['elsewhere'] },
          ],
        },
      }),
      silent,
    );
    api = clients(tasker.address);
    engine = new EngineDriver(tasker.database.db);
    await register(
      protoTemplate('payments', [['charge'], ['receipt', ['charge']], ['notify', ['charge']]], {
        identityStrategy: IdentityStrategy.IDENTITY_STRATEGY_STRICT,
        contextSchema: {
          type: 'object',
          required: ['amount'],
          properties: { amount: { type: 'integer', minimum: 1 }, currency: { type: 'string' } },
        },
      }),
    );
    await register(protoTemplate('chain', [['first'], ['second', ['first']]]));
    await register(protoTemplate('keyed', [['only']], { identityStrategy: IdentityStrategy.IDENTITY_STRATEGY_CALLER_PROVIDED }));
  });

  afterAll(async () => {
    for (const w of workers) w.close();
    api?.close();
    await tasker?.stop();
    await target?.close();
  });

  it('creates a task with its steps, edges, context and execution context', async () => {
    const res = await create(createRequest('payments', { amount: 42, currency: 'EUR' }, { tags: ['vip'], correlationId: 'corr-1' }));
    expect(res.created).toBe(true);
    const task = res.task as Task;
    expect(task.taskId).toMatch(/^[0-9a-f-]{36}$/);
    expect(task.template).toEqual({ namespace: 'e2e', name: 'payments', version: '1.0.0' });
    expect(task.state).toBe(TaskState.TASK_STATE_PENDING);
    expect(task.context).toEqual({ amount: 42, currency: 'EUR' });
    expect(task).toMatchObject({ tags: ['vip'], correlationId: 'corr-1', initiator: 'e2e', sourceSystem: 'vitest', reason: 'testing' });
    expect(task.steps.map((s) => [s.name, s.state, s.dependsOn])).toEqual([
      ['charge', StepState.STEP_STATE_PENDING, []],
      ['receipt', StepState.STEP_STATE_PENDING, ['charge']],
      ['notify', StepState.STEP_STATE_PENDING, ['charge']],
    ]);
    expect(task.edges).toEqual([
      { fromStep: 'charge', toStep: 'receipt' },
      { fromStep: 'charge', toStep: 'notify' },
    ]);
    expect(task.executionContext).toMatchObject({ totalSteps: 3, pendingSteps: 3, readySteps: 1, executionStatus: 'has_ready_steps' });

    const fetched = await getTask(task.taskId);
    expect(fetched.steps.map((s) => s.stepId)).toEqual(task.steps.map((s) => s.stepId));
    expect(fetched.context).toEqual({ amount: 42, currency: 'EUR' });
  });

  it('returns the existing task for a strict duplicate (created = false)', async () => {
    const first = await create(createRequest('payments', { amount: 7 }));
    const again = await create(createRequest('payments', { amount: 7 }));
    expect(again.created).toBe(false);
    expect(again.task?.taskId).toBe(first.task?.taskId);
  });

  it('refuses an unknown template with NOT_FOUND', async () => {
    const failure = await refusal(create(createRequest('no_such_template')));
    expect(failure.code).toBe(grpc.status.NOT_FOUND);
    expect(failure.reason).toBe('TEMPLATE_NOT_FOUND');
  });

  it('refuses a context failing the schema with the violations, creating nothing', async () => {
    const before = (await listTasks({ namespace: 'e2e', name: 'payments', pageSize: 500 })).tasks.length;
    const failure = await refusal(create(createRequest('payments', { amount: 0, currency: 5 })));
    expect(failure.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(failure.reason).toBe('CONTEXT_INVALID');
    const paths = (failure.details['violations'] as Array<{ path: string }>).map((v) => v.path).sort();
    expect(paths).toEqual(['/amount', '/currency']);
    expect((await listTasks({ namespace: 'e2e', name: 'payments', pageSize: 500 })).tasks.length).toBe(before);
  });

  it('requires an idempotency key for a caller_provided template and honours it', async () => {
    expect((await refusal(create(createRequest('keyed')))).reason).toBe('IDEMPOTENCY_KEY_REQUIRED');
    const first = await create(createRequest('keyed', {}, { idempotencyKey: 'order-77' }));
    const again = await create(createRequest('keyed', { different: true }, { idempotencyKey: 'order-77' }));
    expect([first.created, again.created]).toEqual([true, false]);
    expect(again.task?.taskId).toBe(first.task?.taskId);
  });

  it('answers NOT_FOUND for unknown or malformed task ids', async () => {
    expect((await refusal(getTask('not-a-uuid'))).reason).toBe('TASK_NOT_FOUND');
    expect((await refusal(getTask('01900000-0000-7000-8000-000000000000'))).code).toBe(grpc.status.NOT_FOUND);
  });

  it('lists tasks newest first with filters and page tokens', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await create(createRequest('chain', { i }, { tags: i % 2 === 0 ? ['even'] : ['odd'] }))).task!.taskId);
    const pages: string[][] = [];
    let token = '';
    do {
      const page = await listTasks({ namespace: 'e2e', name: 'chain', pageSize: 2, pageToken: token });
      pages.push(page.tasks.map((t) => t.taskId));
      expect(page.tasks.every((t) => t.steps.length === 0 && t.executionContext === undefined)).toBe(true);
      token = page.nextPageToken;
    } while (token);
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    expect(pages.flat()).toEqual([...ids].reverse());

    const even = await listTasks({ namespace: 'e2e', name: 'chain', tag: 'even' });
    expect(even.tasks.map((t) => t.taskId).sort()).toEqual([ids[0], ids[2], ids[4]].sort());
    const pending = await listTasks({ name: 'chain', states: [TaskState.TASK_STATE_PENDING] });
    expect(pending.tasks.length).toBe(5);
    expect((await listTasks({ name: 'chain', states: [TaskState.TASK_STATE_COMPLETE] })).tasks).toEqual([]);
    expect((await listTasks({ name: 'chain', states: [TaskState.TASK_STATE_UNSPECIFIED] })).tasks).toEqual([]);
    const badToken = await refusal(listTasks({ name: 'chain', pageToken: 'garbage' }));
    expect(badToken.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('cancels a task, sends Cancel to the worker holding a step, and refuses to cancel a finished one', async () => {
    await register(protoTemplate('cancellable', [['held'], ['later', ['held']]]));
    const worker = new RawWorker(tasker.address);
    workers.push(worker);
    await worker.hello({ handlers: ['cancellable.work'], maxInFlight: 1 });
    const taskId = (await create(createRequest('cancellable'))).task!.taskId;
    const [assignment] = await worker.takeSteps(1);
    expect(assignment?.stepName).toBe('held');

    const res = await unary(api.tasks.cancelTask.bind(api.tasks), { taskId, reason: 'customer changed their mind' });
    expect(res.task?.state).toBe(TaskState.TASK_STATE_CANCELLED);
    expect(res.task?.steps.every((s) => s.state === StepState.STEP_STATE_CANCELLED)).toBe(true);
    expect(res.cancelledStepIds.sort()).toEqual(res.task!.steps.map((s) => s.stepId).sort());
    const cancel = await worker.nextCancel();
    expect(cancel.steps.map((s) => s.stepId)).toEqual([assignment!.stepId]);

    const again = await unary(api.tasks.cancelTask.bind(api.tasks), { taskId, reason: '' });
    expect(again.task?.state).toBe(TaskState.TASK_STATE_CANCELLED);
    expect(again.cancelledStepIds).toEqual([]);

    await register(protoTemplate('finishing', [['first'], ['second', ['first']]]));
    const done = (await create(createRequest('finishing'))).task!.taskId;
    for (const name of ['first', 'second']) {
      const [a] = await engine.claim('finishing.work', 1);
      expect(a?.stepName).toBe(name);
      await engine.completed(a!, { name });
    }
    expect((await getTask(done)).state).toBe(TaskState.TASK_STATE_COMPLETE);
    const refused = await refusal(unary(api.tasks.cancelTask.bind(api.tasks), { taskId: done, reason: '' }));
    expect(refused.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(refused.reason).toBe('TASK_NOT_CANCELLABLE');
    expect(refused.details).toEqual({ state: 'complete' });
  });

  it('retries a failed step with a fresh allowance, refusing a step in another state', async () => {
    await register(protoTemplate('repairable', [['a'], ['b', ['a']], ['c', ['b']]]));
    const taskId = (await create(createRequest('repairable'))).task!.taskId;
    const [a] = await engine.claim('repairable.work', 1);
    await engine.failed(a!, false);
    const task = await getTask(taskId);
    expect(stepOf(task, 'a').state).toBe(StepState.STEP_STATE_ERROR);
    expect(stepOf(task, 'a').lastError).toMatchObject({ errorClass: 'Boom', message: 'it broke', retryable: false });
    expect(task.state).toBe(TaskState.TASK_STATE_ERROR);

    // b is pending behind a: retrying it is refused, naming the state.
    const wrong = await refusal(unary(api.tasks.retryStep.bind(api.tasks), { stepId: stepOf(task, 'b').stepId, reason: '' }));
    expect(wrong.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(wrong.reason).toBe('STEP_NOT_RETRYABLE');
    expect(wrong.details).toEqual({ state: 'pending' });

    const retried = await unary(api.tasks.retryStep.bind(api.tasks), { stepId: stepOf(task, 'a').stepId, reason: 'flaky' });
    expect(retried.step).toMatchObject({ name: 'a', state: StepState.STEP_STATE_PENDING, attempts: 1, attemptBase: 1, maxAttempts: 3 });
    expect((await getTask(taskId)).state).not.toBe(TaskState.TASK_STATE_ERROR);
    expect((await refusal(unary(api.tasks.retryStep.bind(api.tasks), { stepId: 'nope', reason: '' }))).reason).toBe('STEP_NOT_FOUND');
  });

  it('completes and resolves steps by hand, refusing a step a worker holds or one already done', async () => {
    await register(protoTemplate('mendable', [['a'], ['b', ['a']], ['c', ['b']]]));
    const taskId = (await create(createRequest('mendable'))).task!.taskId;
    const [a] = await engine.claim('mendable.work', 1);
    await engine.failed(a!, false);
    let task = await getTask(taskId);
    const completed = await unary(api.tasks.completeStep.bind(api.tasks), {
      stepId: stepOf(task, 'a').stepId,
      result: { fixed: 'by hand' },
      reason: 'operator',
    });
    expect(completed.step).toMatchObject({ name: 'a', state: StepState.STEP_STATE_COMPLETE, result: { fixed: 'by hand' } });

    const [b] = await engine.claim('mendable.work', 1);
    expect(b?.stepName).toBe('b');
    expect(JSON.parse(b!.ancestorResultsJson)).toEqual({ a: { fixed: 'by hand' } });
    const busy = await refusal(unary(api.tasks.resolveStep.bind(api.tasks), { stepId: b!.stepId, reason: '' }));
    expect(busy).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, reason: 'STEP_NOT_RESOLVABLE', details: { state: 'enqueued' } });
    await engine.completed(b!, { b: true });

    task = await getTask(taskId);
    const resolved = await unary(api.tasks.resolveStep.bind(api.tasks), { stepId: stepOf(task, 'c').stepId, reason: 'not needed' });
    expect(resolved.step?.state).toBe(StepState.STEP_STATE_RESOLVED_MANUALLY);
    expect((await getTask(taskId)).state).toBe(TaskState.TASK_STATE_COMPLETE);
    const late = await refusal(unary(api.tasks.completeStep.bind(api.tasks), { stepId: stepOf(task, 'c').stepId, reason: '' }));
    expect(late.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(late.message).toContain('complete');
  });

  it('retries every failed step of a task with RetryTask', async () => {
    await register(protoTemplate('retriable', [['a'], ['b', ['a']]]));
    const taskId = (await create(createRequest('retriable'))).task!.taskId;
    expect((await refusal(unary(api.tasks.retryTask.bind(api.tasks), { taskId, reason: '' }))).reason).toBe('TASK_NOT_RETRYABLE');
    const [a] = await engine.claim('retriable.work', 1);
    await engine.failed(a!, false);
    const res = await unary(api.tasks.retryTask.bind(api.tasks), { taskId, reason: 'again' });
    expect(stepOf(res.task!, 'a').state).toBe(StepState.STEP_STATE_PENDING);
    expect([TaskState.TASK_STATE_PENDING, TaskState.TASK_STATE_IN_PROGRESS]).toContain(res.task!.state);
  });

  it('checks tokens, roles and namespaces', async () => {
    const taskId = (await create(createRequest('chain', { auth: true }))).task!.taskId;
    expect((await refusal(create(createRequest('chain'), null))).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await refusal(create(createRequest('chain'), 'wrong-token-value-000'))).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await refusal(create(createRequest('chain'), TOKENS.worker))).code).toBe(grpc.status.PERMISSION_DENIED);
    expect((await create(createRequest('chain', { by: 'admin' }), TOKENS.admin)).created).toBe(true);
    expect((await refusal(create(createRequest('chain'), LIMITED_TOKEN))).code).toBe(grpc.status.PERMISSION_DENIED);
    const other = await refusal(unary(api.tasks.getTask.bind(api.tasks), { taskId, omitResults: false }, LIMITED_TOKEN));
    expect(other.code).toBe(grpc.status.PERMISSION_DENIED);
    expect((await listTasks({}, LIMITED_TOKEN)).tasks).toEqual([]);
    const denied = await refusal(unary(api.admin.getSystemHealth.bind(api.admin), {}, TOKENS.client));
    expect(denied.code).toBe(grpc.status.PERMISSION_DENIED);
  });

  it('serves the operator views: workers, health, analytics and a step audit', async () => {
    const worker = new RawWorker(tasker.address);
    workers.push(worker);
    const welcome = await worker.hello({ workerName: 'auditor', handlers: ['audited.work'], maxInFlight: 2, labels: { zone: 'a' } });
    await register(protoTemplate('audited', [['one']]));
    const taskId = (await create(createRequest('audited'))).task!.taskId;
    const [step] = await worker.takeSteps(1);
    await worker.report([worker.started(step!), worker.completed(step!, { ok: 1 })]);
    await eventually(() => getTask(taskId), (t) => t.state === TaskState.TASK_STATE_COMPLETE, 'the audited task to complete');

    const sessions = (await unary(api.admin.listWorkers.bind(api.admin), { namespace: '', handler: 'audited.work', includeExpired: false }, TOKENS.admin)).sessions;
    expect(sessions).toHaveLength(1);
    expect(sessions[0]).toMatchObject({
      sessionId: welcome.sessionId,
      workerName: 'auditor',
      handlers: ['audited.work'],
      labels: { zone: 'a' },
      maxInFlight: 2,
      inFlight: 0,
      state: SessionState.SESSION_STATE_ACTIVE,
      connected: true,
    });

    const health = (await unary(api.admin.getSystemHealth.bind(api.admin), {}, TOKENS.admin)).health!;
    expect(Object.keys(health.taskCounts).sort()).toEqual(
      ['blocked_by_failures', 'cancelled', 'complete', 'error', 'in_progress', 'pending', 'resolved_manually', 'waiting_for_retry'],
    );
    expect(health.taskCounts['complete']).toBeGreaterThanOrEqual(1);
    expect(health.activeSessions).toBeGreaterThanOrEqual(1);

    const analytics = await unary(api.admin.getAnalytics.bind(api.admin), { since: new Date(Date.now() - 3_600_000), limit: 50 }, TOKENS.admin);
    expect(analytics.tasksPerMinute).toBeGreaterThan(0);
    expect(analytics.slowestTasks.map((t) => t.taskId)).toContain(taskId);
    const limited = await unary(api.admin.getAnalytics.bind(api.admin), { since: undefined, limit: 0 }, LIMITED_TOKEN);
    expect(limited.slowestTasks).toEqual([]);

    const audit = (await unary(api.admin.getStepAudit.bind(api.admin), { stepId: step!.stepId }, TOKENS.admin)).transitions;
    expect(audit.map((t) => [t.fromState, t.toState])).toEqual([
      ['', 'pending'],
      ['pending', 'enqueued'],
      ['enqueued', 'in_progress'],
      ['in_progress', 'complete'],
    ]);
    expect(audit[1]?.attempt).toBe(1);
    expect((await refusal(unary(api.admin.getStepAudit.bind(api.admin), { stepId: step!.stepId }, LIMITED_TOKEN))).code).toBe(
      grpc.status.PERMISSION_DENIED,
    );
    expect((await refusal(unary(api.admin.getStepAudit.bind(api.admin), { stepId: 'x' }, TOKENS.admin))).reason).toBe('STEP_NOT_FOUND');
  });

  it("keeps the details of a worker's failure and returns them with the error in GetTask and GetStepAudit", async () => {
    const worker = new RawWorker(tasker.address);
    workers.push(worker);
    await worker.hello({ workerName: 'detailed', handlers: ['detailed.work'], maxInFlight: 2 });
    await register(protoTemplate('detailed', [['with'], ['without']]));
    const taskId = (await create(createRequest('detailed'))).task!.taskId;
    const steps = await worker.takeSteps(2);
    const withDetails = steps.find((s) => s.stepName === 'with')!;
    const without = steps.find((s) => s.stepName === 'without')!;
    const details = { card: { last4: '4242', brand: 'visa' }, declines: [51, 5], retry: false };
    const acks = await worker.report([worker.failed(withDetails, 'declined', false, details), worker.failed(without, 'plain', false)]);
    expect(acks.map((a) => a.status)).toEqual([AckStatus.ACK_STATUS_ACCEPTED, AckStatus.ACK_STATUS_ACCEPTED]);

    const task = await getTask(taskId);
    const stored = stepOf(task, 'with').lastError!;
    expect(stored).toMatchObject({ errorClass: 'TestError', message: 'declined', retryable: false });
    expect(JSON.parse(stored.detailsJson.toString('utf8'))).toEqual(details);
    expect(stepOf(task, 'without').lastError!.detailsJson).toHaveLength(0);

    const audit = (await unary(api.admin.getStepAudit.bind(api.admin), { stepId: withDetails.stepId }, TOKENS.admin)).transitions;
    const failed = audit.find((t) => t.toState === 'error');
    expect(failed?.metadata).toMatchObject({ error: { message: 'declined', details, attempt: 1, origin: 'worker' } });
  });
});
