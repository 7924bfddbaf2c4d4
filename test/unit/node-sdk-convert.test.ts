/** Node SDK conversions between plain objects and the wire: templates, states, task steps, assignments. */
import { describe, expect, it } from 'vitest';
import { StepState, TaskState } from '../../clients/node/src/gen/tasker/v1/common.js';
import { Step as ProtoStep, Task as ProtoTask } from '../../clients/node/src/gen/tasker/v1/task.js';
import { Backoff, IdentityStrategy, TaskTemplate } from '../../clients/node/src/gen/tasker/v1/template.js';
import { stepFromAssignment } from '../../clients/node/src/handler.js';
import { stepStateName, taskFromProto, taskStateName, taskStateValue, taskStepFromProto } from '../../clients/node/src/models.js';
import type { TemplateInput } from '../../clients/node/src/templates.js';
import { templateFromProto, templateToProto } from '../../clients/node/src/templates.js';

const template: TemplateInput = {
  namespace: 'payments',
  name: 'refund',
  version: '1.0.0',
  identityStrategy: 'always_unique',
  contextSchema: { type: 'object', required: ['amount'] },
  steps: [
    { name: 'charge', handler: 'payments.charge', retry: { maxAttempts: 5, backoff: 'linear', baseMs: 100, jitter: 0 }, timeoutMs: 2_000 },
    { name: 'notify', handler: 'payments.notify', dependsOn: ['charge'], handlerConfig: { channel: 'email' } },
  ],
  environments: { test: { steps: [{ name: 'charge', handler: 'payments.fake_charge', timeoutMs: 500 }] } },
};

describe('templates', () => {
  it('turn short enum names into wire enums and survive an encode/decode round trip', () => {
    const proto = templateToProto(template);
    expect(proto.identityStrategy).toBe(IdentityStrategy.IDENTITY_STRATEGY_ALWAYS_UNIQUE);
    expect(proto.steps[0]!.retry).toEqual({ maxAttempts: 5, backoff: Backoff.BACKOFF_LINEAR, baseMs: 100, jitter: 0 });
    const decoded = TaskTemplate.decode(TaskTemplate.encode(proto).finish());
    const back = templateFromProto(decoded);
    expect(back).toMatchObject({
      namespace: 'payments',
      identityStrategy: 'always_unique',
      contextSchema: { type: 'object', required: ['amount'] },
      environments: { test: { steps: [{ name: 'charge', handler: 'payments.fake_charge', timeoutMs: 500 }] } },
    });
    expect(back.steps[0]).toEqual({ name: 'charge', handler: 'payments.charge', dependsOn: [], handlerConfig: {}, retry: template.steps[0]!.retry, timeoutMs: 2_000 });
    expect(back.steps[1]).toMatchObject({ dependsOn: ['charge'], handlerConfig: { channel: 'email' }, retry: {} });
  });

  it('refuses unknown enum names', () => {
    expect(() => templateToProto({ ...template, identityStrategy: 'loose' as never })).toThrow(/unknown identity strategy "loose"/);
    expect(() => templateToProto({ ...template, steps: [{ name: 'a', handler: 'h', retry: { backoff: 'random' as never } }] })).toThrow(RangeError);
  });
});

describe('states', () => {
  it('are lowercase names both ways', () => {
    expect(taskStateName(TaskState.TASK_STATE_BLOCKED_BY_FAILURES)).toBe('blocked_by_failures');
    expect(taskStateName(TaskState.TASK_STATE_UNSPECIFIED)).toBeNull();
    expect(stepStateName(StepState.STEP_STATE_WAITING_FOR_RETRY)).toBe('waiting_for_retry');
    expect(taskStateValue('resolved_manually')).toBe(TaskState.TASK_STATE_RESOLVED_MANUALLY);
    expect(() => taskStateValue('done' as never)).toThrow(RangeError);
  });
});

describe('taskStepFromProto', () => {
  /** A step as it crosses the wire: encoded and decoded, so unset fields take their wire defaults. */
  function wireStep(fields: Partial<ProtoStep>): ProtoStep {
    return ProtoStep.decode(ProtoStep.encode(ProtoStep.fromPartial({ stepId: 's-1', name: 'charge', handler: 'payments.charge', ...fields })).finish());
  }

  it('gives every field in its plain form', () => {
    const at = new Date('2030-01-01T00:00:00Z');
    const step = taskStepFromProto(
      wireStep({
        state: StepState.STEP_STATE_WAITING_FOR_RETRY,
        attempts: 2,
        maxAttempts: 3,
        lastError: { errorClass: 'Timeout', message: 'slow', backtrace: ['a.ts:1'], retryable: true, code: '', detailsJson: Buffer.from('{"n":1}') },
        dependsOn: ['auth'],
        createdAt: at,
        nextAttemptAt: at,
      }),
    );
    expect(step).toEqual({
      stepId: 's-1',
      name: 'charge',
      handler: 'payments.charge',
      state: 'waiting_for_retry',
      attempts: 2,
      maxAttempts: 3,
      attemptBase: 0,
      attemptsInAllowance: 2,
      result: undefined,
      lastError: { errorClass: 'Timeout', message: 'slow', backtrace: ['a.ts:1'], retryable: true, retryAfterMs: null, code: null, details: { n: 1 } },
      dependsOn: ['auth'],
      createdAt: at,
      updatedAt: null,
      startedAt: null,
      completedAt: null,
      nextAttemptAt: at,
    });
  });

  it('counts the attempts of the current allowance from attemptBase after an operator retry', () => {
    const retried = taskStepFromProto(wireStep({ state: StepState.STEP_STATE_PENDING, attempts: 3, maxAttempts: 3, attemptBase: 3 }));
    expect(retried).toMatchObject({ attempts: 3, maxAttempts: 3, attemptBase: 3, attemptsInAllowance: 0 });
    const running = taskStepFromProto(wireStep({ state: StepState.STEP_STATE_IN_PROGRESS, attempts: 5, maxAttempts: 3, attemptBase: 3 }));
    expect(running).toMatchObject({ attempts: 5, attemptBase: 3, attemptsInAllowance: 2 });
    expect(running.attempts).toBeGreaterThan(running.maxAttempts);
  });

  it('is how a task gives its steps', () => {
    const proto = ProtoTask.fromPartial({
      taskId: 't-1',
      state: TaskState.TASK_STATE_IN_PROGRESS,
      steps: [
        { stepId: 's-1', name: 'charge', state: StepState.STEP_STATE_COMPLETE, attempts: 4, maxAttempts: 2, attemptBase: 3, result: { ok: true } },
        { stepId: 's-2', name: 'notify', state: StepState.STEP_STATE_PENDING, maxAttempts: 2 },
      ],
    });
    const task = taskFromProto(ProtoTask.decode(ProtoTask.encode(proto).finish()));
    expect(task.steps.map((s) => [s.name, s.attempts, s.attemptBase, s.attemptsInAllowance])).toEqual([
      ['charge', 4, 3, 1],
      ['notify', 0, 0, 0],
    ]);
    expect(task.results).toEqual({ charge: { ok: true } });
  });
});

describe('stepFromAssignment', () => {
  const assignment = {
    stepId: 's-1',
    attempt: 2,
    taskId: 't-1',
    template: { namespace: 'payments', name: 'refund', version: '1.0.0' },
    stepName: 'charge',
    handler: 'payments.charge',
    handlerConfigJson: Buffer.from('{"currency":"EUR"}'),
    contextJson: Buffer.from('{"amount":5}'),
    ancestorResultsJson: Buffer.from('{"auth":{"ok":true}}'),
    deadline: new Date('2030-01-01T00:00:00Z'),
    correlationId: '',
    maxAttempts: 3,
    timeoutMs: 1_000,
  };

  it('decodes the JSON payloads into plain objects', () => {
    const { step, invalid } = stepFromAssignment(assignment, 'b-1');
    expect(invalid).toBeNull();
    expect(step).toEqual({
      id: 's-1',
      attempt: 2,
      maxAttempts: 3,
      taskId: 't-1',
      name: 'charge',
      handler: 'payments.charge',
      template: { namespace: 'payments', name: 'refund', version: '1.0.0' },
      context: { amount: 5 },
      handlerConfig: { currency: 'EUR' },
      ancestorResults: { auth: { ok: true } },
      deadline: new Date('2030-01-01T00:00:00Z'),
      timeoutMs: 1_000,
      correlationId: null,
      batchId: 'b-1',
    });
  });

  it('passes max_attempts through: after an operator retry the server already sends the allowance\'s last attempt', () => {
    // Retried after attempt 3 under a policy of 3 attempts: attempts 4, 5 and 6 form the new allowance.
    expect(stepFromAssignment({ ...assignment, attempt: 6, maxAttempts: 6 }, 'b-1').step).toMatchObject({ attempt: 6, maxAttempts: 6 });
  });

  it('turns unreadable JSON into a non-retryable INVALID_ASSIGNMENT failure', () => {
    const { step, invalid } = stepFromAssignment({ ...assignment, contextJson: Buffer.from('[1,2]') }, 'b-1');
    expect(step.context).toEqual({});
    expect(invalid).toMatchObject({ errorClass: 'InvalidAssignment', retryable: false, code: 'INVALID_ASSIGNMENT' });
  });
});
