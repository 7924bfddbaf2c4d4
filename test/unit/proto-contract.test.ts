/**
 * The v1 wire contract as the generated TypeScript codecs see it: batched worker
 * messages survive an encode/decode round trip unchanged, proto3 `optional`
 * keeps presence, and every service exposes the rpc paths and streaming shapes
 * the SDKs and stock tools (grpcurl) rely on.
 */
import { describe, expect, it } from 'vitest';
import { AdminServiceService } from '../../src/gen/tasker/v1/admin.js';
import { StepError, StepState, TaskState } from '../../src/gen/tasker/v1/common.js';
import { GetTaskResponse, TaskServiceService, TaskUpdate } from '../../src/gen/tasker/v1/task.js';
import { Backoff, IdentityStrategy, TemplateServiceService } from '../../src/gen/tasker/v1/template.js';
import {
  AckStatus,
  RejectReason,
  ServerMessage,
  WorkerMessage,
  WorkerServiceService,
} from '../../src/gen/tasker/v1/worker.js';

const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value), 'utf8');

function roundTripWorker(message: WorkerMessage): WorkerMessage {
  return WorkerMessage.decode(WorkerMessage.encode(message).finish());
}

function roundTripServer(message: ServerMessage): ServerMessage {
  return ServerMessage.decode(ServerMessage.encode(message).finish());
}

describe('WorkerMessage', () => {
  it('carries a batch of reports of every kind and batch completions unchanged', () => {
    const message = WorkerMessage.fromPartial({
      kind: {
        $case: 'reports',
        value: {
          reports: [
            { reportId: 1, stepId: 'step-a', attempt: 1, kind: { $case: 'started', value: { startedAt: new Date('2025-01-02T03:04:05.678Z') } } },
            { reportId: 2, stepId: 'step-a', attempt: 1, kind: { $case: 'progress', value: { seq: 1, payloadJson: json({ done: 40, of: 100 }) } } },
            { reportId: 3, stepId: 'step-a', attempt: 1, kind: { $case: 'completed', value: { resultJson: json({ charged: 1250, currency: 'EUR' }) } } },
            {
              reportId: 4,
              stepId: 'step-b',
              attempt: 3,
              kind: {
                $case: 'failed',
                value: {
                  error: {
                    errorClass: 'Net::ReadTimeout',
                    message: 'upstream timed out',
                    backtrace: ['lib/charge.rb:12:in `call`', 'lib/worker.rb:40'],
                    retryable: true,
                    retryAfterMs: 15_000,
                    code: 'UPSTREAM_TIMEOUT',
                    detailsJson: json({ host: 'psp.example' }),
                  },
                },
              },
            },
            { reportId: 2 ** 40, stepId: 'step-c', attempt: 2, kind: { $case: 'completed', value: { resultJson: Buffer.alloc(0) } } },
          ],
          batches: [{ batchId: 'batch-7', completed: 2, failed: 1 }],
        },
      },
    });

    const decoded = roundTripWorker(message);

    expect(decoded).toEqual(message);
    expect(decoded.kind?.$case).toBe('reports');
    if (decoded.kind?.$case !== 'reports') throw new Error('expected reports');
    const kinds = decoded.kind.value.reports.map((report) => report.kind?.$case);
    expect(kinds).toEqual(['started', 'progress', 'completed', 'failed', 'completed']);
    const progress = decoded.kind.value.reports[1]?.kind;
    if (progress?.$case !== 'progress') throw new Error('expected progress');
    expect(JSON.parse(progress.value.payloadJson.toString('utf8'))).toEqual({ done: 40, of: 100 });
    expect(decoded.kind.value.reports[4]?.reportId).toBe(2 ** 40);
  });

  it('carries a Hello with labels and shipped templates', () => {
    const message = WorkerMessage.fromPartial({
      kind: {
        $case: 'hello',
        value: {
          workerName: 'billing-worker-1',
          language: 'node',
          sdkVersion: '0.1.0',
          handlers: ['Payments::ChargeCard', 'Payments::Notify'],
          namespaces: ['payments'],
          maxInFlight: 64,
          labels: { host: 'web-3', region: 'eu' },
          resumeHandle: '',
          templates: [
            {
              namespace: 'payments',
              name: 'process_refund',
              version: '1.0.0',
              identityStrategy: IdentityStrategy.IDENTITY_STRATEGY_CALLER_PROVIDED,
              contextSchema: { type: 'object', required: ['amount'] },
              steps: [
                { name: 'charge', handler: 'Payments::ChargeCard', retry: { maxAttempts: 5, backoff: Backoff.BACKOFF_LINEAR, baseMs: 0, jitter: 0.25 } },
                { name: 'notify', handler: 'Payments::Notify', dependsOn: ['charge'], handlerConfig: { channel: 'email' }, timeoutMs: 30_000 },
              ],
              environments: { production: { steps: [{ name: 'notify', timeoutMs: 10_000 }] } },
            },
          ],
        },
      },
    });

    const decoded = roundTripWorker(message);

    expect(decoded).toEqual(message);
    if (decoded.kind?.$case !== 'hello') throw new Error('expected hello');
    const retry = decoded.kind.value.templates[0]?.steps[0]?.retry;
    expect(retry?.baseMs).toBe(0);
    expect(retry?.maxMs).toBeUndefined();
  });

  it('keeps presence of proto3 optional fields', () => {
    const zero = StepError.decode(StepError.encode(StepError.fromPartial({ retryAfterMs: 0 })).finish());
    const unset = StepError.decode(StepError.encode(StepError.fromPartial({})).finish());
    expect(zero.retryAfterMs).toBe(0);
    expect(unset.retryAfterMs).toBeUndefined();
  });
});

describe('ServerMessage', () => {
  it('carries a StepBatch of several assignments unchanged', () => {
    const assignment = (n: number) => ({
      stepId: `step-${n}`,
      attempt: n,
      taskId: 'task-1',
      template: { namespace: 'payments', name: 'process_refund', version: '1.0.0' },
      stepName: `step_${n}`,
      handler: 'Payments::ChargeCard',
      handlerConfigJson: json({ retries: n }),
      contextJson: json({ amount: 1250, customer: { id: 'c-9' } }),
      ancestorResultsJson: json({ validate: { ok: true }, reserve: [1, 2, 3] }),
      deadline: new Date(Date.UTC(2025, 0, 2, 3, 4, 5, n)),
      correlationId: 'corr-42',
      maxAttempts: 3,
      timeoutMs: 60_000,
    });
    const message = ServerMessage.fromPartial({
      kind: { $case: 'batch', value: { batchId: 'batch-7', steps: [assignment(1), assignment(2), assignment(3)] } },
    });

    const decoded = roundTripServer(message);

    expect(decoded).toEqual(message);
    if (decoded.kind?.$case !== 'batch') throw new Error('expected batch');
    expect(decoded.kind.value.steps.map((step) => step.stepId)).toEqual(['step-1', 'step-2', 'step-3']);
    const context: unknown = JSON.parse(decoded.kind.value.steps[2]?.contextJson.toString('utf8') ?? 'null');
    expect(context).toEqual({ amount: 1250, customer: { id: 'c-9' } });
  });

  it('carries acks, cancels, drains and the welcome', () => {
    const messages = [
      ServerMessage.fromPartial({
        kind: {
          $case: 'acks',
          value: {
            acks: [
              { reportId: 1, stepId: 'step-a', attempt: 1, status: AckStatus.ACK_STATUS_ACCEPTED },
              { reportId: 2, stepId: 'step-a', attempt: 1, status: AckStatus.ACK_STATUS_DUPLICATE },
              {
                reportId: 3,
                stepId: 'step-b',
                attempt: 1,
                status: AckStatus.ACK_STATUS_REJECTED,
                reason: RejectReason.REJECT_REASON_STALE_ATTEMPT,
                message: 'attempt 1 is stale; current attempt is 2',
              },
            ],
          },
        },
      }),
      ServerMessage.fromPartial({ kind: { $case: 'cancel', value: { steps: [{ stepId: 'step-a', attempt: 2 }], reason: 'customer asked' } } }),
      ServerMessage.fromPartial({ kind: { $case: 'drain', value: { reason: 'server shutdown', graceMs: 30_000 } } }),
      ServerMessage.fromPartial({
        kind: {
          $case: 'welcome',
          value: {
            sessionId: 'session-1',
            sessionHandle: 'c2VjcmV0LWhhbmRsZQ',
            heartbeatIntervalMs: 5_000,
            leaseMs: 30_000,
            sessionExpiresAt: new Date('2025-01-02T03:04:35.000Z'),
            resumed: true,
            inFlight: [{ stepId: 'step-a', attempt: 2 }],
            serverInstance: 'tasker-a',
            maxReportBytes: 4 * 1024 * 1024,
          },
        },
      }),
    ];

    for (const message of messages) expect(roundTripServer(message)).toEqual(message);
  });
});

describe('application messages', () => {
  it('carries JSON context, results and oneof updates as plain values', () => {
    const response = GetTaskResponse.fromPartial({
      task: {
        taskId: 'task-1',
        state: TaskState.TASK_STATE_IN_PROGRESS,
        context: { amount: 1250, tags: ['a', 'b'], nested: { ok: true, none: null } },
        steps: [
          { stepId: 'step-a', name: 'charge', state: StepState.STEP_STATE_COMPLETE, result: { charged: 1250 } },
          { stepId: 'step-b', name: 'notify', state: StepState.STEP_STATE_PENDING, dependsOn: ['charge'] },
        ],
        edges: [{ fromStep: 'charge', toStep: 'notify' }],
      },
    });
    expect(GetTaskResponse.decode(GetTaskResponse.encode(response).finish())).toEqual(response);

    const update = TaskUpdate.fromPartial({
      cursor: 981,
      at: new Date('2025-01-02T03:04:05.000Z'),
      update: {
        $case: 'stepStateChanged',
        value: { stepId: 'step-a', stepName: 'charge', fromState: StepState.STEP_STATE_IN_PROGRESS, toState: StepState.STEP_STATE_COMPLETE, attempt: 1 },
      },
    });
    expect(TaskUpdate.decode(TaskUpdate.encode(update).finish())).toEqual(update);
  });
});

describe('service definitions', () => {
  const shape = (definition: Record<string, { path: string; requestStream: boolean; responseStream: boolean }>) =>
    Object.fromEntries(
      Object.values(definition).map((method) => [method.path, `${method.requestStream ? 'stream' : 'unary'}->${method.responseStream ? 'stream' : 'unary'}`]),
    );

  it('WorkerService.Connect is one bidirectional stream', () => {
    expect(shape(WorkerServiceService)).toEqual({ '/tasker.v1.WorkerService/Connect': 'stream->stream' });
  });

  it('TaskService exposes every rpc, with WatchTask and SubscribeEvents server-streaming', () => {
    expect(shape(TaskServiceService)).toEqual({
      '/tasker.v1.TaskService/CreateTask': 'unary->unary',
      '/tasker.v1.TaskService/GetTask': 'unary->unary',
      '/tasker.v1.TaskService/ListTasks': 'unary->unary',
      '/tasker.v1.TaskService/CancelTask': 'unary->unary',
      '/tasker.v1.TaskService/RetryTask': 'unary->unary',
      '/tasker.v1.TaskService/RetryStep': 'unary->unary',
      '/tasker.v1.TaskService/ResolveStep': 'unary->unary',
      '/tasker.v1.TaskService/CompleteStep': 'unary->unary',
      '/tasker.v1.TaskService/WatchTask': 'unary->stream',
      '/tasker.v1.TaskService/SubscribeEvents': 'unary->stream',
    });
  });

  it('TemplateService and AdminService expose their unary rpcs', () => {
    expect(shape(TemplateServiceService)).toEqual({
      '/tasker.v1.TemplateService/RegisterTemplate': 'unary->unary',
      '/tasker.v1.TemplateService/GetTemplate': 'unary->unary',
      '/tasker.v1.TemplateService/ListTemplates': 'unary->unary',
      '/tasker.v1.TemplateService/ValidateTemplate': 'unary->unary',
    });
    expect(shape(AdminServiceService)).toEqual({
      '/tasker.v1.AdminService/ListWorkers': 'unary->unary',
      '/tasker.v1.AdminService/GetSystemHealth': 'unary->unary',
      '/tasker.v1.AdminService/GetAnalytics': 'unary->unary',
      '/tasker.v1.AdminService/GetStepAudit': 'unary->unary',
    });
  });

  it('uses the lower-camel method keys grpc-js implementations are written against', () => {
    expect(Object.keys(WorkerServiceService)).toEqual(['connect']);
    expect(Object.keys(TaskServiceService)).toContain('subscribeEvents');
  });
});
