import { describe, expect, test } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { EVENT_TYPES, StepEvent, TaskEvent, taskEventFor } from '../../src/domain/events.js';
import { isUuid, newId, newIds, uuidV7Time } from '../../src/domain/ids.js';
import {
  canTransitionStep,
  DEPENDENCY_SATISFYING_STATES,
  nextStepState,
  STEP_STATES,
  STEP_TRANSITIONS,
  TERMINAL_STEP_STATES,
} from '../../src/domain/step-state.js';
import type { StepState, StepTransitionKind } from '../../src/domain/step-state.js';
import { canTransitionTask, deriveTaskState, stepCounts, TASK_TRANSITIONS } from '../../src/domain/task-state.js';
import type { TaskState } from '../../src/domain/task-state.js';

describe('step transition table', () => {
  const cases: Array<[StepTransitionKind, StepState, StepState | null, StepState?]> = [
    ['enqueue', 'pending', 'enqueued'],
    ['enqueue', 'waiting_for_retry', 'enqueued'],
    ['enqueue', 'enqueued', null],
    ['enqueue', 'complete', null],
    ['start', 'enqueued', 'in_progress'],
    ['start', 'in_progress', null],
    ['complete', 'enqueued', 'complete'],
    ['complete', 'in_progress', 'complete'],
    ['complete', 'complete', null],
    ['complete', 'pending', null],
    ['fail_retry', 'in_progress', 'waiting_for_retry'],
    ['fail_permanent', 'enqueued', 'error'],
    ['fail_permanent', 'waiting_for_retry', null],
    ['lease_expired', 'in_progress', 'waiting_for_retry', 'waiting_for_retry'],
    ['lease_expired', 'enqueued', 'error', 'error'],
    ['lease_expired', 'pending', null, 'error'],
    ['timeout', 'in_progress', 'error', 'error'],
    ['cancel', 'pending', 'cancelled'],
    ['cancel', 'in_progress', 'cancelled'],
    ['cancel', 'complete', null],
    ['cancel', 'error', null],
    ['manual_retry', 'error', 'pending'],
    ['manual_retry', 'complete', null],
    ['manual_retry', 'waiting_for_retry', null],
    ['manual_resolve', 'error', 'resolved_manually'],
    ['manual_resolve', 'pending', 'resolved_manually'],
    ['manual_resolve', 'in_progress', null],
    ['manual_resolve', 'complete', null],
    ['manual_complete', 'error', 'complete'],
    ['manual_complete', 'cancelled', null],
  ];
  test.each(cases)('%s from %s → %s', (kind, from, to, decided) => {
    expect(nextStepState(kind, from, decided)).toBe(to);
    expect(canTransitionStep(kind, from)).toBe(to !== null);
  });

  test('a decided transition must choose one of its targets', () => {
    expect(() => nextStepState('timeout', 'in_progress')).toThrow(/must decide/);
    expect(() => nextStepState('timeout', 'in_progress', 'complete')).toThrow(/must decide/);
  });

  test('no transition leaves a terminal state except the operator ones', () => {
    const operator = new Set<StepTransitionKind>(['manual_retry', 'manual_resolve', 'manual_complete']);
    for (const [kind, rule] of Object.entries(STEP_TRANSITIONS) as Array<[StepTransitionKind, { from: readonly StepState[] }]>) {
      if (operator.has(kind)) continue;
      for (const terminal of TERMINAL_STEP_STATES) expect(rule.from).not.toContain(terminal);
    }
  });

  test('every state appears and satisfying states are terminal', () => {
    expect(STEP_STATES).toHaveLength(8);
    for (const s of DEPENDENCY_SATISFYING_STATES) expect(TERMINAL_STEP_STATES).toContain(s);
  });
});

describe('task transition table', () => {
  test.each([
    ['settle', 'in_progress', true],
    ['settle', 'error', false],
    ['settle', 'complete', false],
    ['repair', 'error', true],
    ['repair', 'cancelled', false],
    ['cancel', 'blocked_by_failures', true],
    ['cancel', 'error', true],
    ['cancel', 'complete', false],
    ['cancel', 'cancelled', false],
    ['manual_resolve', 'error', true],
  ] as const)('%s from %s allowed: %s', (kind, from, allowed) => {
    expect(canTransitionTask(kind, from)).toBe(allowed);
  });

  test('cancel goes to cancelled', () => {
    expect(TASK_TRANSITIONS.cancel.to).toBe('cancelled');
  });
});

describe('deriveTaskState', () => {
  const cases: Array<[string, Partial<Record<StepState, number>>, boolean, TaskState]> = [
    ['no steps', {}, false, 'complete'],
    ['all complete', { complete: 3 }, false, 'complete'],
    ['complete and resolved', { complete: 2, resolved_manually: 1 }, false, 'complete'],
    ['nothing started', { pending: 3 }, true, 'pending'],
    ['one enqueued', { pending: 2, enqueued: 1 }, false, 'in_progress'],
    ['one running', { in_progress: 1, complete: 1, pending: 1 }, false, 'in_progress'],
    ['ready child after completions', { complete: 1, pending: 2 }, true, 'in_progress'],
    ['only backoff can run', { complete: 1, waiting_for_retry: 1, pending: 1 }, false, 'waiting_for_retry'],
    ['backoff plus ready pending', { complete: 1, waiting_for_retry: 1, pending: 1 }, true, 'in_progress'],
    ['backoff and running', { waiting_for_retry: 1, in_progress: 1 }, false, 'in_progress'],
    ['error while others run', { error: 1, in_progress: 1, pending: 1 }, false, 'blocked_by_failures'],
    ['error while a sibling is ready', { error: 1, complete: 1, pending: 2 }, true, 'blocked_by_failures'],
    ['error and retry pending', { error: 1, waiting_for_retry: 1 }, false, 'blocked_by_failures'],
    ['error, only blocked pending', { error: 1, complete: 1, pending: 2 }, false, 'error'],
    ['error, rest complete', { error: 1, complete: 4 }, false, 'error'],
    ['cancelled', { cancelled: 2, complete: 1 }, false, 'cancelled'],
    ['inconsistent: nothing can run', { pending: 2, complete: 1 }, false, 'error'],
  ];
  test.each(cases)('%s', (_name, byState, readyPending, expected) => {
    expect(deriveTaskState(stepCounts(byState, readyPending))).toBe(expected);
  });
});

describe('events', () => {
  test.each([
    ['pending', 'in_progress', 'settle', TaskEvent.Started],
    ['waiting_for_retry', 'in_progress', 'settle', TaskEvent.Resumed],
    ['in_progress', 'waiting_for_retry', 'settle', TaskEvent.WaitingForRetry],
    ['in_progress', 'blocked_by_failures', 'settle', TaskEvent.Blocked],
    ['blocked_by_failures', 'error', 'settle', TaskEvent.Failed],
    ['in_progress', 'complete', 'settle', TaskEvent.Completed],
    ['error', 'in_progress', 'repair', TaskEvent.RetryRequested],
    ['error', 'pending', 'repair', TaskEvent.RetryRequested],
    ['error', 'complete', 'repair', TaskEvent.Completed],
  ] as const)('%s → %s (%s) is %s', (from, to, cause, event) => {
    expect(taskEventFor(from, to, cause)).toBe(event);
  });

  test('catalog names are unique and dotted', () => {
    expect(new Set(EVENT_TYPES).size).toBe(EVENT_TYPES.length);
    for (const e of EVENT_TYPES) expect(e).toMatch(/^(task|step)\.[a-z_]+$/);
    expect(EVENT_TYPES).toContain(StepEvent.Enqueued);
  });
});

describe('ids', () => {
  test('UUIDv7, strictly increasing, time-ordered', () => {
    const ids = newIds(5000, Date.UTC(2030, 0, 1));
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) {
      expect(isUuid(id)).toBe(true);
      expect(id[14]).toBe('7');
      expect('89ab').toContain(id[19]);
    }
    expect([...ids].sort()).toEqual(ids);
    const later = newId(Date.UTC(2031, 0, 1));
    expect(later > ids[ids.length - 1]!).toBe(true);
    expect(uuidV7Time(later)).toBe(Date.UTC(2031, 0, 1));
  });
});

describe('ManualClock', () => {
  test('moves only when told, never backwards', () => {
    const clock = new ManualClock(new Date('2030-01-01T00:00:00Z'));
    expect(clock.now().toISOString()).toBe('2030-01-01T00:00:00.000Z');
    clock.advance(1500);
    expect(clock.now().toISOString()).toBe('2030-01-01T00:00:01.500Z');
    expect(() => clock.advance(-1)).toThrow(RangeError);
    expect(() => clock.set(new Date('2029-01-01T00:00:00Z'))).toThrow(RangeError);
  });
});
