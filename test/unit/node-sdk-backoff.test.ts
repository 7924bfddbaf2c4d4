/** Node SDK reconnect backoff: exponential ceilings, equal jitter, reset after a Welcome. */
import { describe, expect, it } from 'vitest';
import { Backoff } from '../../clients/node/src/internal/backoff.js';
import { SlotQueue } from '../../clients/node/src/internal/slot-queue.js';

describe('Backoff', () => {
  it('doubles the ceiling from initialMs up to maxMs', () => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 1_000 });
    expect([1, 2, 3, 4, 5, 6, 60].map((n) => backoff.ceiling(n))).toEqual([100, 200, 400, 800, 1_000, 1_000, 1_000]);
  });

  it.each([
    [0, [50, 100, 200, 400, 500]],
    [0.999_999, [100, 200, 400, 800, 1_000]],
  ])('draws each delay from the upper half of its ceiling (random %s)', (r, expected) => {
    const backoff = new Backoff({ initialMs: 100, maxMs: 1_000 }, () => r);
    const delays = expected.map(() => backoff.next());
    delays.forEach((d, i) => expect(d).toBeCloseTo(expected[i]!, 0));
    expect(backoff.attempt).toBe(5);
  });

  it('starts over after reset()', () => {
    const backoff = new Backoff({ initialMs: 10, maxMs: 80 }, () => 1);
    backoff.next();
    backoff.next();
    backoff.reset();
    expect(backoff.attempt).toBe(0);
    expect(backoff.next()).toBe(10);
  });

  it('defaults to 100 ms growing to 5 s, and refuses nonsense', () => {
    const backoff = new Backoff();
    expect([backoff.initialMs, backoff.maxMs]).toEqual([100, 5_000]);
    expect(() => new Backoff({ initialMs: 0 })).toThrow(RangeError);
    expect(() => new Backoff({ initialMs: 500, maxMs: 100 })).toThrow(RangeError);
  });
});

describe('SlotQueue (the worker never runs more handlers than its concurrency)', () => {
  function harness(limit: number) {
    const started: number[] = [];
    let peak = 0;
    const queue = new SlotQueue<number>(limit, (job) => {
      started.push(job);
      peak = Math.max(peak, queue.running);
    });
    return { queue, started, peak: () => peak };
  }

  it('starts at most `limit` jobs, in arrival order, and the next one when a slot frees', () => {
    const { queue, started, peak } = harness(2);
    for (let i = 1; i <= 5; i++) queue.push(i);
    expect(started).toEqual([1, 2]);
    expect([queue.running, queue.waiting]).toEqual([2, 3]);
    queue.release();
    expect(started).toEqual([1, 2, 3]);
    queue.release();
    queue.release();
    queue.release();
    expect(started).toEqual([1, 2, 3, 4, 5]);
    expect(peak()).toBe(2);
  });

  it('raising the limit starts waiting jobs; lowering it lets running ones finish first', () => {
    const { queue, started } = harness(1);
    for (let i = 1; i <= 4; i++) queue.push(i);
    queue.setLimit(3);
    expect(started).toEqual([1, 2, 3]);
    queue.setLimit(1);
    queue.release();
    queue.release();
    expect(started).toEqual([1, 2, 3]); // still one running: 3
    queue.release();
    expect(started).toEqual([1, 2, 3, 4]);
  });

  it('removes waiting jobs that must never start, and refuses bad limits', () => {
    const { queue, started } = harness(1);
    [1, 2, 3, 4].forEach((j) => queue.push(j));
    expect(queue.remove((j) => j % 2 === 0)).toEqual([2, 4]);
    queue.release();
    queue.release();
    expect(started).toEqual([1, 3]);
    expect(() => queue.setLimit(0)).toThrow(RangeError);
    expect(() => new SlotQueue(1.5, () => undefined)).toThrow(RangeError);
    expect(() => queue.release()).toThrow();
  });
});
