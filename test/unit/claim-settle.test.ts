import { describe, expect, test } from 'vitest';
import { StepState } from '../../src/domain/step-state.js';
import { deriveTaskState, stepCounts } from '../../src/domain/task-state.js';
import { CLAIMED_TASK_STATE } from '../../src/store/step-claims.js';

const STATES = Object.values(StepState);

/** Every assignment of 0..2 steps to each state. */
function* allCounts(): Generator<Partial<Record<StepState, number>>> {
  const total = 3 ** STATES.length;
  for (let n = 0; n < total; n++) {
    const counts: Partial<Record<StepState, number>> = {};
    let rest = n;
    for (const state of STATES) {
      counts[state] = rest % 3;
      rest = Math.floor(rest / 3);
    }
    yield counts;
  }
}

describe('the state a claim settles its task to', () => {
  test('matches deriveTaskState for every step count with a step leased', () => {
    let checked = 0;
    for (const counts of allCounts()) {
      if ((counts.enqueued ?? 0) === 0) continue;
      for (const readyPending of [false, true]) {
        const expected = (counts.error ?? 0) > 0 ? CLAIMED_TASK_STATE.withErrors : CLAIMED_TASK_STATE.clean;
        expect(deriveTaskState(stepCounts(counts, readyPending)), JSON.stringify(counts)).toBe(expected);
        checked += 1;
      }
    }
    expect(checked).toBe(2 * 2 * 3 ** (STATES.length - 1));
  });

  test('is in_progress without failed steps and blocked_by_failures with one', () => {
    expect(CLAIMED_TASK_STATE).toEqual({ clean: 'in_progress', withErrors: 'blocked_by_failures' });
  });
});
