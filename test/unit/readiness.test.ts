import { describe, expect, test } from 'vitest';
import { evaluateReadiness } from '../../src/domain/readiness.js';
import type { ReadinessStep } from '../../src/domain/readiness.js';
import type { StepState } from '../../src/domain/step-state.js';

const NOW = new Date('2030-01-01T00:00:10Z');
const step = (id: string, state: StepState, attempts = 0, extra: Partial<ReadinessStep> = {}): ReadinessStep => ({
  id,
  state,
  attempts,
  maxAttempts: 3,
  ...extra,
});

describe('evaluateReadiness', () => {
  // Diamond: a → b, a → c, b → d, c → d
  const edges = [
    { from: 'a', to: 'b' },
    { from: 'a', to: 'c' },
    { from: 'b', to: 'd' },
    { from: 'c', to: 'd' },
  ];

  test.each([
    {
      name: 'fresh diamond: only the root is ready',
      states: { a: 'pending', b: 'pending', c: 'pending', d: 'pending' },
      ready: ['a'],
      pending: { a: 0, b: 1, c: 1, d: 2 },
    },
    {
      name: 'root complete: both branches ready',
      states: { a: 'complete', b: 'pending', c: 'pending', d: 'pending' },
      ready: ['b', 'c'],
      pending: { a: 0, b: 0, c: 0, d: 2 },
    },
    {
      name: 'one branch resolved manually, the other running: join not ready',
      states: { a: 'complete', b: 'resolved_manually', c: 'in_progress', d: 'pending' },
      ready: [],
      pending: { a: 0, b: 0, c: 0, d: 1 },
    },
    {
      name: 'both branches satisfied: join ready',
      states: { a: 'complete', b: 'complete', c: 'resolved_manually', d: 'pending' },
      ready: ['d'],
      pending: { a: 0, b: 0, c: 0, d: 0 },
    },
    {
      name: 'a failed branch blocks the join',
      states: { a: 'complete', b: 'complete', c: 'error', d: 'pending' },
      ready: [],
      pending: { a: 0, b: 0, c: 0, d: 1 },
    },
  ] as const)('$name', ({ states, ready, pending }) => {
    const steps = Object.entries(states).map(([id, s]) => step(id, s as StepState, s === 'pending' ? 0 : 1));
    const result = evaluateReadiness(steps, edges, NOW);
    expect([...result].filter(([, r]) => r.ready).map(([id]) => id)).toEqual(ready);
    for (const [id, n] of Object.entries(pending)) expect(result.get(id)?.pendingParents).toBe(n);
  });

  test('waiting_for_retry is ready only once its backoff has elapsed', () => {
    const due = step('x', 'waiting_for_retry', 1, { retryAt: new Date('2030-01-01T00:00:10Z') });
    const later = step('y', 'waiting_for_retry', 1, { retryAt: new Date('2030-01-01T00:00:11Z') });
    const result = evaluateReadiness([due, later], [], NOW);
    expect(result.get('x')).toMatchObject({ ready: true, retryEligible: true, nextRetryAt: due.retryAt });
    expect(result.get('y')).toMatchObject({ ready: false, retryEligible: true, nextRetryAt: later.retryAt });
  });

  test('retry eligibility: first attempt always, later ones while attempts remain', () => {
    const result = evaluateReadiness(
      [
        step('first', 'pending', 0, { maxAttempts: 1 }),
        step('left', 'waiting_for_retry', 2, { retryAt: NOW }),
        step('spent', 'pending', 3),
      ],
      [],
      NOW,
    );
    expect(result.get('first')).toMatchObject({ retryEligible: true, ready: true });
    expect(result.get('left')).toMatchObject({ retryEligible: true, ready: true });
    expect(result.get('spent')).toMatchObject({ retryEligible: false, ready: false });
  });

  test('retry eligibility counts from the current allowance after an operator retry', () => {
    const result = evaluateReadiness(
      [
        step('fresh', 'pending', 3, { attemptBase: 3, maxAttempts: 1 }),
        step('left', 'waiting_for_retry', 4, { attemptBase: 3, retryAt: NOW }),
        step('spent', 'pending', 6, { attemptBase: 3 }),
      ],
      [],
      NOW,
    );
    expect(result.get('fresh')).toMatchObject({ retryEligible: true, ready: true });
    expect(result.get('left')).toMatchObject({ retryEligible: true, ready: true });
    expect(result.get('spent')).toMatchObject({ retryEligible: false, ready: false });
  });

  test('running and terminal steps are never ready', () => {
    const states: StepState[] = ['enqueued', 'in_progress', 'complete', 'error', 'cancelled', 'resolved_manually'];
    const result = evaluateReadiness(states.map((s) => step(s, s, 1)), [], NOW);
    for (const s of states) expect(result.get(s)?.ready).toBe(false);
  });

  test('an edge naming an unknown step is an error', () => {
    expect(() => evaluateReadiness([step('a', 'pending')], [{ from: 'a', to: 'zz' }], NOW)).toThrow(/unknown step/);
  });
});
