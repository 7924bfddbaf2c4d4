/**
 * Node SDK report bookkeeping: reports keep their report_id until acked, are resent
 * unchanged and in order after a reconnect, duplicates go out twice, batches stay
 * below the server's message limit, and every report's fate is told exactly once.
 */
import { describe, expect, it } from 'vitest';
import { BatchTracker } from '../../clients/node/src/internal/batch-tracker.js';
import type { AckOutcome } from '../../clients/node/src/internal/report-buffer.js';
import { ENVELOPE_BYTES, ReportBuffer, encodedReportBytes, reportSizeBound, stepKey } from '../../clients/node/src/internal/report-buffer.js';
import type { ReportBatch, StepReport } from '../../clients/node/src/gen/tasker/v1/worker.js';
import { WorkerMessage } from '../../clients/node/src/gen/tasker/v1/worker.js';

const STEP = '6f1c1d9e-8a55-4f4e-9d57-6f0b4d0c2a11';

function progress(seq: number, payload: unknown = { seq }, stepId = STEP, attempt = 1): Omit<StepReport, 'reportId'> {
  return { stepId, attempt, kind: { $case: 'progress', value: { seq, payloadJson: Buffer.from(JSON.stringify(payload)) } } };
}

function completed(result: unknown, stepId = STEP, attempt = 1): Omit<StepReport, 'reportId'> {
  return { stepId, attempt, kind: { $case: 'completed', value: { resultJson: Buffer.from(JSON.stringify(result)) } } };
}

const ids = (batches: ReportBatch[]) => batches.map((b) => b.reports.map((r) => r.reportId));
const encodedSize = (batch: ReportBatch) => WorkerMessage.encode({ kind: { $case: 'reports', value: batch } }).finish().length;

describe('ReportBuffer', () => {
  it('numbers reports from a per-worker counter and sends everything queued in one batch', () => {
    let queued = 0;
    const buffer = new ReportBuffer(() => queued++);
    expect(buffer.add(progress(1))).toBe(1);
    expect(buffer.add(progress(2))).toBe(2);
    buffer.addBatchCompleted({ batchId: 'b1', completed: 1, failed: 0 });
    expect(queued).toBe(3);
    expect(buffer.hasUnsent).toBe(true);
    const batches = buffer.take();
    expect(ids(batches)).toEqual([[1, 2]]);
    expect(batches[0]!.batches).toEqual([{ batchId: 'b1', completed: 1, failed: 0 }]);
    expect(buffer.hasUnsent).toBe(false);
    expect(buffer.take()).toEqual([]);
    expect(buffer.unackedCount).toBe(2);
  });

  it('keeps every report until acked and resends the unacked ones, with their original ids, in order', () => {
    const buffer = new ReportBuffer();
    for (let seq = 1; seq <= 4; seq++) buffer.add(progress(seq));
    buffer.take();
    buffer.ack(2, { status: 'accepted' });
    buffer.ack(4, { status: 'duplicate' });
    expect(buffer.resendAll()).toBe(2);
    const resent = buffer.take();
    expect(ids(resent)).toEqual([[1, 3]]);
    expect(resent[0]!.reports.map((r) => r.kind?.$case === 'progress' && r.kind.value.seq)).toEqual([1, 3]);
    // The next new report continues the counter.
    expect(buffer.add(progress(5))).toBe(5);
    expect(buffer.unackedReports().map((r) => r.reportId)).toEqual([1, 3, 5]);
  });

  it('tells each report its fate once: on its ack, or when its step is discarded', () => {
    const buffer = new ReportBuffer();
    const fates: Array<[number, AckOutcome['status']]> = [];
    const track = (id: number) => (o: AckOutcome) => fates.push([id, o.status]);
    buffer.add(progress(1), { onAck: track(1) });
    buffer.add(progress(1, {}, 'other-step'), { onAck: track(2) });
    buffer.add(completed({ ok: true }), { onAck: track(3) });
    buffer.take();
    expect(buffer.ack(1, { status: 'accepted' })?.reportId).toBe(1);
    expect(buffer.ack(1, { status: 'duplicate' })).toBeUndefined(); // the second copy's ack
    expect(buffer.discardSteps(new Set([stepKey(STEP, 1)]), new Error('cancelled'))).toBe(1);
    expect(buffer.discardAll(new Error('session gone'))).toBe(1);
    expect(fates).toEqual([
      [1, 'accepted'],
      [3, 'discarded'],
      [2, 'discarded'],
    ]);
    expect(buffer.unackedCount).toBe(0);
  });

  it('forgets the unsent copies of discarded reports', () => {
    const buffer = new ReportBuffer();
    buffer.add(progress(1));
    buffer.add(progress(1, {}, 'other-step'));
    buffer.discardSteps(new Set([stepKey(STEP, 1)]), new Error('gone'));
    expect(ids(buffer.take())).toEqual([[2]]);
  });

  it('sends a report marked duplicate a second time, in its own batch, with the same id', () => {
    const buffer = new ReportBuffer();
    buffer.add(progress(1));
    buffer.add(completed({ ok: true }), { duplicate: true });
    const batches = buffer.take();
    expect(ids(batches)).toEqual([[1, 2], [2]]);
    buffer.resendAll();
    expect(ids(buffer.take())).toEqual([[1, 2]]); // only once more: the switch is spent
  });

  it('splits batches below the message limit and replaces a report that cannot fit', () => {
    const buffer = new ReportBuffer();
    const fates: AckOutcome[] = [];
    const limit = 400;
    for (let seq = 1; seq <= 10; seq++) buffer.add(progress(seq, { pad: 'x'.repeat(60) }));
    buffer.add(completed({ pad: 'y'.repeat(1000) }), { onAck: (o) => fates.push(o) });
    const batches = buffer.take(limit);
    expect(batches.length).toBeGreaterThan(2);
    for (const batch of batches) expect(encodedSize(batch)).toBeLessThanOrEqual(limit);
    expect(ids(batches).flat()).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const last = batches.at(-1)!.reports.at(-1)!;
    expect(last.reportId).toBe(11);
    expect(last.kind?.$case).toBe('failed');
    if (last.kind?.$case === 'failed') expect(last.kind.value.error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', retryable: false });
    expect(fates).toEqual([expect.objectContaining({ status: 'rejected', reason: 'PAYLOAD_TOO_LARGE' })]);
    expect(encodedReportBytes(last)).toBeLessThanOrEqual(limit - ENVELOPE_BYTES);
  });

  it('resolves whenAllAcked once the last report is acked or dropped', async () => {
    const buffer = new ReportBuffer();
    await buffer.whenAllAcked();
    buffer.add(progress(1));
    buffer.add(progress(2));
    let done = false;
    const waiting = buffer.whenAllAcked().then(() => (done = true));
    buffer.ack(1, { status: 'accepted' });
    await Promise.resolve();
    expect(done).toBe(false);
    buffer.discardAll(new Error('gone'));
    await waiting;
    expect(done).toBe(true);
  });
});

describe('BatchTracker', () => {
  it('emits BatchCompleted once every step of a batch settled, counting outcomes', () => {
    const tracker = new BatchTracker();
    tracker.open('b1', ['a#1', 'b#1', 'c#1']);
    expect(tracker.settle('a#1', 'completed')).toBeNull();
    expect(tracker.settle('b#1', 'dropped')).toBeNull();
    expect(tracker.settle('x#1', 'completed')).toBeNull(); // not tracked
    expect(tracker.settle('c#1', 'failed')).toEqual({ batchId: 'b1', completed: 1, failed: 1 });
    expect(tracker.openBatches).toBe(0);
    tracker.open('b2', ['d#1']);
    tracker.clear();
    expect(tracker.settle('d#1', 'completed')).toBeNull();
  });
});

describe('reportSizeBound', () => {
  const cases: Array<[string, Omit<StepReport, 'reportId'>]> = [
    ['started', { stepId: STEP, attempt: 1, kind: { $case: 'started', value: { startedAt: new Date() } } }],
    ['progress', progress(7, { big: 'é'.repeat(300) })],
    ['completed', completed({ list: Array.from({ length: 200 }, (_, i) => i) })],
    [
      'failed',
      {
        stepId: STEP,
        attempt: 2_000_000,
        kind: {
          $case: 'failed',
          value: {
            error: {
              errorClass: 'TypeError',
              message: 'ü'.repeat(200),
              backtrace: Array.from({ length: 30 }, (_, i) => `at frame${i} (file:///x.js:${i}:1)`),
              retryable: true,
              retryAfterMs: 2 ** 40,
              code: 'CODE',
              detailsJson: Buffer.from('{"a":1}'),
            },
          },
        },
      },
    ],
  ];

  it.each(cases)('never underestimates the encoded size of a %s report', (_kind, report) => {
    const full = { ...report, reportId: Number.MAX_SAFE_INTEGER };
    expect(reportSizeBound(full)).toBeGreaterThanOrEqual(encodedReportBytes(full));
  });
});
