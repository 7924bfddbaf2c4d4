import { describe, expect, it } from 'vitest';
import { backoffDelayMs, decideFailure, DEFAULT_RETRY_POLICY, type FailureDecision } from '../../src/domain/retry-policy.js';
import type { RetryPolicy } from '../../src/domain/template.js';

const policy = (p: Partial<RetryPolicy>): RetryPolicy => ({ ...DEFAULT_RETRY_POLICY, jitter: 0, ...p });
const fixedRandom = (value: number) => () => value;

describe('DEFAULT_RETRY_POLICY', () => {
  it('is 3 attempts, exponential, 1 s base, 60 s cap, 10% jitter', () => {
    expect(DEFAULT_RETRY_POLICY).toEqual({ maxAttempts: 3, backoff: 'exponential', baseMs: 1000, maxMs: 60_000, jitter: 0.1 });
    expect(Object.isFrozen(DEFAULT_RETRY_POLICY)).toBe(true);
  });
});

describe('backoffDelayMs without jitter', () => {
  it.each([
    { backoff: 'exponential', attempt: 1, delay: 1000 },
    { backoff: 'exponential', attempt: 2, delay: 2000 },
    { backoff: 'exponential', attempt: 3, delay: 4000 },
    { backoff: 'exponential', attempt: 6, delay: 32_000 },
    { backoff: 'exponential', attempt: 7, delay: 60_000 },
    { backoff: 'exponential', attempt: 1000, delay: 60_000 },
    { backoff: 'linear', attempt: 1, delay: 1000 },
    { backoff: 'linear', attempt: 2, delay: 2000 },
    { backoff: 'linear', attempt: 5, delay: 5000 },
    { backoff: 'linear', attempt: 100, delay: 60_000 },
    { backoff: 'fixed', attempt: 1, delay: 1000 },
    { backoff: 'fixed', attempt: 9, delay: 1000 },
  ] as const)('$backoff after attempt $attempt waits $delay ms', ({ backoff, attempt, delay }) => {
    expect(backoffDelayMs(policy({ backoff }), attempt)).toBe(delay);
  });

  it('caps a fixed delay at maxMs and treats attempt < 1 as 1', () => {
    expect(backoffDelayMs(policy({ backoff: 'fixed', baseMs: 500, maxMs: 200 }), 1)).toBe(200);
    expect(backoffDelayMs(policy({ backoff: 'exponential' }), 0)).toBe(1000);
    expect(backoffDelayMs(policy({ backoff: 'exponential' }), -3)).toBe(1000);
  });

  it('is zero for a zero base', () => {
    expect(backoffDelayMs(policy({ baseMs: 0, jitter: 0.5 }), 4, fixedRandom(0.99))).toBe(0);
  });
});

describe('backoffDelayMs with jitter', () => {
  it.each([
    { backoff: 'exponential', attempt: 2, random: 0, delay: 1600 },
    { backoff: 'exponential', attempt: 2, random: 0.5, delay: 2000 },
    { backoff: 'exponential', attempt: 2, random: 0.75, delay: 2200 },
    { backoff: 'linear', attempt: 3, random: 0, delay: 2400 },
    { backoff: 'linear', attempt: 3, random: 0.25, delay: 2700 },
    { backoff: 'fixed', attempt: 5, random: 0, delay: 800 },
    { backoff: 'fixed', attempt: 5, random: 0.999999, delay: 1200 },
  ] as const)('$backoff attempt $attempt with random $random waits $delay ms (jitter 0.2)', ({ backoff, attempt, random, delay }) => {
    expect(backoffDelayMs(policy({ backoff, jitter: 0.2 }), attempt, fixedRandom(random))).toBe(delay);
  });

  it('never exceeds maxMs once the cap is reached, but spreads below it', () => {
    const p = policy({ backoff: 'exponential', jitter: 0.5 });
    expect(backoffDelayMs(p, 10, fixedRandom(0.999))).toBe(60_000);
    expect(backoffDelayMs(p, 10, fixedRandom(0))).toBe(30_000);
  });

  it('with jitter 1 can reach zero but never goes negative', () => {
    expect(backoffDelayMs(policy({ jitter: 1 }), 1, fixedRandom(0))).toBe(0);
  });

  it('stays within [d(1-j), d(1+j)] for many random draws', () => {
    const p = policy({ backoff: 'linear', baseMs: 1000, maxMs: 1_000_000, jitter: 0.1 });
    for (let i = 0; i < 200; i++) {
      const d = backoffDelayMs(p, 4);
      expect(d).toBeGreaterThanOrEqual(3600);
      expect(d).toBeLessThanOrEqual(4400);
    }
  });
});

describe('decideFailure', () => {
  const p = policy({ maxAttempts: 3, backoff: 'exponential' });
  const cases: { name: string; attempt: number; retryable: boolean; retryAfterMs?: number | null; expected: FailureDecision }[] = [
    { name: 'non-retryable on the first attempt', attempt: 1, retryable: false, expected: { kind: 'permanent' } },
    { name: 'non-retryable on the last attempt', attempt: 3, retryable: false, expected: { kind: 'permanent' } },
    { name: 'non-retryable with retry_after', attempt: 1, retryable: false, retryAfterMs: 10, expected: { kind: 'permanent' } },
    { name: 'retryable, attempts remain', attempt: 1, retryable: true, expected: { kind: 'retry', delayMs: 1000 } },
    { name: 'retryable, second attempt', attempt: 2, retryable: true, expected: { kind: 'retry', delayMs: 2000 } },
    { name: 'retryable on the last attempt', attempt: 3, retryable: true, expected: { kind: 'exhausted' } },
    { name: 'retryable beyond the last attempt', attempt: 7, retryable: true, expected: { kind: 'exhausted' } },
    { name: 'retry_after wins over backoff', attempt: 1, retryable: true, retryAfterMs: 250, expected: { kind: 'retry', delayMs: 250 } },
    { name: 'retry_after is not capped by maxMs', attempt: 1, retryable: true, retryAfterMs: 600_000, expected: { kind: 'retry', delayMs: 600_000 } },
    { name: 'retry_after 0 means now', attempt: 2, retryable: true, retryAfterMs: 0, expected: { kind: 'retry', delayMs: 0 } },
    { name: 'negative retry_after is clamped to 0', attempt: 2, retryable: true, retryAfterMs: -50, expected: { kind: 'retry', delayMs: 0 } },
    { name: 'null retry_after falls back to backoff', attempt: 2, retryable: true, retryAfterMs: null, expected: { kind: 'retry', delayMs: 2000 } },
    { name: 'retry_after does not revive an exhausted step', attempt: 3, retryable: true, retryAfterMs: 5, expected: { kind: 'exhausted' } },
  ];

  it.each(cases)('$name', ({ attempt, retryable, retryAfterMs, expected }) => {
    expect(decideFailure({ policy: p, attempt, retryable, retryAfterMs })).toEqual(expected);
  });

  it('uses the injected random for jitter', () => {
    const jittered = policy({ maxAttempts: 5, jitter: 0.5 });
    expect(decideFailure({ policy: jittered, attempt: 1, retryable: true, random: fixedRandom(0) })).toEqual({ kind: 'retry', delayMs: 500 });
  });

  it('maxAttempts 1 never retries', () => {
    expect(decideFailure({ policy: policy({ maxAttempts: 1 }), attempt: 1, retryable: true })).toEqual({ kind: 'exhausted' });
  });
});
