import { describe, expect, test } from 'vitest';
import { isTransientDatabaseError, transientBackoffMs, withTransientRetry } from '../../src/store/transient.js';

/** A plain error object shaped like what pg / node raise: a message and a `code`. */
function failure(code: string | undefined, message = 'failure'): Error {
  return Object.assign(new Error(message), code === undefined ? {} : { code });
}

describe('isTransientDatabaseError', () => {
  test.each([
    ['40001 serialization_failure', failure('40001'), true],
    ['40P01 deadlock_detected', failure('40P01'), true],
    ['57P01 admin_shutdown', failure('57P01'), true],
    ['57P03 cannot_connect_now', failure('57P03'), true],
    ['08006 connection_failure', failure('08006'), true],
    ['08P01 protocol_violation (class 08)', failure('08P01'), true],
    ['ECONNRESET', failure('ECONNRESET'), true],
    ['ECONNREFUSED', failure('ECONNREFUSED'), true],
    ['ETIMEDOUT', failure('ETIMEDOUT'), true],
    ['Connection terminated unexpectedly', failure(undefined, 'Connection terminated unexpectedly'), true],
    ['wrapped transient cause', new Error('query failed', { cause: failure('40P01') }), true],
    ['23505 unique_violation', failure('23505'), false],
    ['42P01 undefined_table', failure('42P01'), false],
    ['57014 query_canceled (statement timeout)', failure('57014'), false],
    ['plain error', new Error('nope'), false],
    ['not an error', 'ECONNRESET', false],
    ['null', null, false],
  ])('%s -> %s', (_label, err, expected) => {
    expect(isTransientDatabaseError(err)).toBe(expected);
  });
});

describe('transientBackoffMs', () => {
  test.each([
    [1, 0, 50],
    [1, 0.999999, 100],
    [2, 0, 100],
    [3, 0.5, 300],
    [10, 0, 500],
    [10, 0.999999, 1000],
  ])('retry %i with jitter %f -> %i ms (base 100, max 1000)', (retry, random, expected) => {
    expect(transientBackoffMs(retry, 100, 1000, () => random)).toBe(expected);
  });
});

describe('withTransientRetry', () => {
  function recorder() {
    const waits: number[] = [];
    const retries: number[] = [];
    return {
      waits,
      retries,
      opts: {
        random: () => 0,
        sleep: async (ms: number) => void waits.push(ms),
        onRetry: (_err: unknown, retry: number) => void retries.push(retry),
      },
    };
  }

  test('returns the value after transient failures, waiting with growing backoff', async () => {
    const r = recorder();
    let calls = 0;
    const value = await withTransientRetry(async () => {
      calls += 1;
      if (calls <= 3) throw failure(calls === 2 ? '40P01' : '40001');
      return 'done';
    }, { ...r.opts, baseMs: 10, maxMs: 1000 });
    expect(value).toBe('done');
    expect(calls).toBe(4);
    expect(r.retries).toEqual([1, 2, 3]);
    expect(r.waits).toEqual([5, 10, 20]);
  });

  test('gives up after `retries` retries and rethrows the last failure', async () => {
    const r = recorder();
    let calls = 0;
    const last = failure('ECONNRESET', 'last');
    const outcome = withTransientRetry(async () => {
      calls += 1;
      throw calls === 3 ? last : failure('ECONNRESET');
    }, { ...r.opts, retries: 2 });
    await expect(outcome).rejects.toBe(last);
    expect(calls).toBe(3);
    expect(r.retries).toEqual([1, 2]);
  });

  test('does not retry a non-transient error', async () => {
    const r = recorder();
    let calls = 0;
    const violation = failure('23505', 'duplicate key');
    await expect(
      withTransientRetry(async () => {
        calls += 1;
        throw violation;
      }, r.opts),
    ).rejects.toBe(violation);
    expect(calls).toBe(1);
    expect(r.retries).toEqual([]);
  });

  test('retries zero times when retries is 0', async () => {
    const r = recorder();
    let calls = 0;
    await expect(
      withTransientRetry(async () => {
        calls += 1;
        throw failure('40001');
      }, { ...r.opts, retries: 0 }),
    ).rejects.toMatchObject({ code: '40001' });
    expect(calls).toBe(1);
  });
});
