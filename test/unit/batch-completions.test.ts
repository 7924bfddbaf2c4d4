/**
 * Which BatchCompleted messages of a group commit may still move their batch
 * (`pendingBatchCompletions`): the others are left out of the group's batch update.
 */
import { describe, expect, test } from 'vitest';
import { StepEvent } from '../../src/domain/events.js';
import { StepState } from '../../src/domain/step-state.js';
import { TaskState } from '../../src/domain/task-state.js';
import { pendingBatchCompletions } from '../../src/engine/outcomes.js';
import type { StepChange } from '../../src/store/step-changes.js';
import type { LockedStep, LockedStepBatch } from '../../src/store/steps.js';

const SESSION = 'session-a';

function batch(id: string, extra: Partial<LockedStepBatch> = {}): LockedStepBatch {
  return { id, sessionId: SESSION, state: 'executing', stepCount: 2, counted: 0, ...extra };
}

function locked(id: string, b: LockedStepBatch | null): LockedStep {
  return {
    id,
    taskId: 'task',
    name: id,
    handler: 'h',
    state: StepState.InProgress,
    attempts: 1,
    attemptBase: 0,
    maxAttempts: 3,
    retry: {},
    sessionId: SESSION,
    batchId: b?.id ?? null,
    pendingParents: 0,
    lastError: null,
    taskState: TaskState.InProgress,
    namespace: 'ns',
    taskName: 't',
    batch: b,
  };
}

function outcome(stepId: string, batchOutcome: StepChange['batchOutcome'] = 'completed'): StepChange {
  return {
    stepId,
    taskId: 'task',
    attempt: 1,
    from: StepState.InProgress,
    to: StepState.Complete,
    kind: 'complete',
    event: StepEvent.Completed,
    batchOutcome,
    namespace: 'ns',
    taskName: 't',
    stepName: stepId,
  };
}

const lockedMap = (...steps: LockedStep[]) => new Map(steps.map((s) => [s.id, s]));
const completion = (batchId: string, sessionId = SESSION) => ({ batchId, sessionId });

describe('pendingBatchCompletions', () => {
  test('drops a completion whose batch the group counted to its last step', () => {
    const b = batch('b1', { counted: 1 });
    expect(pendingBatchCompletions([completion('b1')], lockedMap(locked('s2', b)), [outcome('s2')], new Set(['s2']))).toEqual([]);
  });

  test('keeps it while steps of the batch are still uncounted', () => {
    const b = batch('b1', { stepCount: 3, counted: 1 });
    const c = [completion('b1')];
    expect(pendingBatchCompletions(c, lockedMap(locked('s2', b)), [outcome('s2')], new Set(['s2']))).toEqual(c);
  });

  test('counts only changes that moved and carry a batch outcome', () => {
    const b = batch('b1', { counted: 1 });
    const c = [completion('b1')];
    const l = lockedMap(locked('s2', b));
    expect(pendingBatchCompletions(c, l, [outcome('s2')], new Set())).toEqual(c);
    expect(pendingBatchCompletions(c, l, [outcome('s2', null)], new Set(['s2']))).toEqual(c);
  });

  test('drops a completion for a batch already past executing, timed out by the group, or of another session', () => {
    const done = batch('b1', { state: 'completed', counted: 2 });
    expect(pendingBatchCompletions([completion('b1')], lockedMap(locked('s1', done)), [], new Set())).toEqual([]);
    const timedOut = batch('b2', { stepCount: 5 });
    expect(pendingBatchCompletions([completion('b2')], lockedMap(locked('s2', timedOut)), [outcome('s2', 'timed_out')], new Set(['s2']))).toEqual([]);
    const open = batch('b3', { state: 'sent', stepCount: 5 });
    expect(pendingBatchCompletions([completion('b3', 'session-b')], lockedMap(locked('s3', open)), [], new Set())).toEqual([]);
  });

  test('keeps a completion whose batch no step of the group belongs to', () => {
    const c = [completion('b9'), completion('b1')];
    const b = batch('b1', { counted: 1 });
    expect(pendingBatchCompletions(c, lockedMap(locked('s2', b), locked('s3', null)), [outcome('s2')], new Set(['s2']))).toEqual([
      completion('b9'),
    ]);
  });
});
