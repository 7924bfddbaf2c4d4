/** Node SDK conversions between plain objects and the wire: templates, states, assignments. */
import { describe, expect, it } from 'vitest';
import { StepState, TaskState } from '../../clients/node/src/gen/tasker/v1/common.js';
import { Backoff, IdentityStrategy, TaskTemplate } from '../../clients/node/src/gen/tasker/v1/template.js';
import { stepFromAssignment } from '../../clients/node/src/handler.js';
import { stepStateName, taskStateName, taskStateValue } from '../../clients/node/src/models.js';
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

  it('turns unreadable JSON into a non-retryable INVALID_ASSIGNMENT failure', () => {
    const { step, invalid } = stepFromAssignment({ ...assignment, contextJson: Buffer.from('[1,2]') }, 'b-1');
    expect(step.context).toEqual({});
    expect(invalid).toMatchObject({ errorClass: 'InvalidAssignment', retryable: false, code: 'INVALID_ASSIGNMENT' });
  });
});
