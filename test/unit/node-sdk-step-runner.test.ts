/**
 * Node SDK step runner (no I/O): handlers run at most `concurrency` at once, each
 * attempt reports started → progress → final in order, cancellation aborts
 * `ctx.signal` and silences the step, refused reports are handled by reason, and the
 * duplicate switch sends a final report twice.
 */
import { describe, expect, it } from 'vitest';
import { CancelledError, PermanentError, ReportRejectedError } from '../../clients/node/src/errors.js';
import type { StepHandler } from '../../clients/node/src/handler.js';
import { silentLogger } from '../../clients/node/src/internal/logger.js';
import { ReportBuffer, stepKey } from '../../clients/node/src/internal/report-buffer.js';
import { StepRunner } from '../../clients/node/src/internal/step-runner.js';
import type { StepAssignment, StepBatch, StepReport } from '../../clients/node/src/gen/tasker/v1/worker.js';
import { AckStatus, RejectReason } from '../../clients/node/src/gen/tasker/v1/worker.js';

function assignment(stepId: string, handler: string, config: Record<string, unknown> = {}): StepAssignment {
  return {
    stepId,
    attempt: 1,
    taskId: 'task-1',
    template: { namespace: 'ns', name: 'flow', version: '1' },
    stepName: stepId,
    handler,
    handlerConfigJson: Buffer.from(JSON.stringify(config)),
    contextJson: Buffer.from('{}'),
    ancestorResultsJson: Buffer.from('{}'),
    correlationId: '',
    maxAttempts: 3,
    timeoutMs: 0,
  };
}

const batch = (batchId: string, ...steps: StepAssignment[]): StepBatch => ({ batchId, steps });

function harness(handlers: Record<string, StepHandler>, concurrency = 2) {
  const reports = new ReportBuffer();
  const events: string[] = [];
  const runner = new StepRunner({
    handlers: new Map(Object.entries(handlers)),
    reports,
    concurrency,
    logger: silentLogger,
    events: {
      completed: (step) => events.push(`completed ${step.id}`),
      failed: (step, failure) => events.push(`failed ${step.id} ${failure.code ?? failure.errorClass}`),
      cancelled: (step, reason) => events.push(`cancelled ${step.id} ${reason.kind}`),
      rejected: (err) => events.push(`rejected ${err.stepId} ${err.reason}`),
    },
  });
  const sent = (): StepReport[] => reports.take().flatMap((b) => b.reports);
  const kinds = (list: StepReport[]) => list.map((r) => `${r.stepId}:${r.kind?.$case}`);
  const ackAll = (list: StepReport[]) => list.forEach((r) => reports.ack(r.reportId, { status: 'accepted' }));
  return { reports, runner, events, sent, kinds, ackAll };
}

function gate() {
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return { opened, open };
}

describe('StepRunner', () => {
  it('never runs more handlers than its concurrency and reports each attempt in order', async () => {
    let running = 0;
    let peak = 0;
    const release = gate();
    const h = harness({
      work: async (step, ctx) => {
        running += 1;
        peak = Math.max(peak, running);
        await ctx.progress({ at: 'start' });
        await release.opened;
        running -= 1;
        return { id: step.id };
      },
    });
    h.runner.assign(batch('b1', ...['s1', 's2', 's3', 's4', 's5'].map((id) => assignment(id, 'work'))));
    expect(h.runner.running).toBe(2);
    expect(h.runner.held).toBe(5);
    const idle = h.runner.whenIdle();
    for (let i = 0; i < 50 && h.runner.held > 0; i++) {
      release.open();
      h.ackAll(h.sent());
      await new Promise((r) => setImmediate(r));
    }
    await idle;
    expect(peak).toBe(2);
    const last = h.reports.take();
    h.ackAll(last.flatMap((b) => b.reports));
    expect(last.flatMap((b) => b.batches)).toEqual([{ batchId: 'b1', completed: 5, failed: 0 }]);
    expect(h.reports.unackedCount).toBe(0);
    expect(h.events.filter((e) => e.startsWith('completed')).sort()).toEqual(['s1', 's2', 's3', 's4', 's5'].map((s) => `completed ${s}`));
  });

  it('reports started, progress (seq 1, 2) and the result, and says completed only once acked', async () => {
    const h = harness({
      work: async (_step, ctx) => {
        void ctx.progress({ n: 1 });
        void ctx.progress({ n: 2 });
        return { ok: true };
      },
    });
    h.runner.assign(batch('b1', assignment('s1', 'work')));
    await h.runner.whenIdle();
    const reports = h.sent();
    expect(h.kinds(reports)).toEqual(['s1:started', 's1:progress', 's1:progress', 's1:completed']);
    expect(reports.map((r) => (r.kind?.$case === 'progress' ? r.kind.value.seq : null))).toEqual([null, 1, 2, null]);
    expect(h.events).toEqual([]);
    h.ackAll(reports);
    expect(h.events).toEqual(['completed s1']);
  });

  it('maps failures: thrown errors, unknown handlers, unreadable assignments, non-JSON results', async () => {
    const h = harness({
      perm: () => {
        throw new PermanentError('no', { code: 'NOPE' });
      },
      bigint: () => ({ n: 1n }),
    });
    const bad = { ...assignment('s3', 'perm'), contextJson: Buffer.from('not json') };
    h.runner.assign(batch('b1', assignment('s1', 'perm'), assignment('s2', 'missing'), bad, assignment('s4', 'bigint')));
    await h.runner.whenIdle();
    const finals = h.sent().filter((r) => r.kind?.$case === 'failed');
    const codes = Object.fromEntries(finals.map((r) => [r.stepId, r.kind?.$case === 'failed' ? r.kind.value.error : null]));
    expect(codes.s1).toMatchObject({ code: 'NOPE', retryable: false });
    expect(codes.s2).toMatchObject({ code: 'HANDLER_NOT_FOUND', retryable: false });
    expect(codes.s3).toMatchObject({ code: 'INVALID_ASSIGNMENT', retryable: false, errorClass: 'InvalidAssignment' });
    expect(codes.s4).toMatchObject({ code: 'RESULT_NOT_SERIALIZABLE', retryable: false, errorClass: 'TypeError' });
  });

  it('a cancelled step sees its signal abort and reports nothing more; a waiting one never starts', async () => {
    const started = gate();
    let reason: unknown;
    let ran = 0;
    const h = harness(
      {
        wait: async (_step, ctx) => {
          ran += 1;
          started.open();
          await new Promise((r) => ctx.signal.addEventListener('abort', r));
          reason = ctx.signal.reason;
          return { late: true };
        },
      },
      1,
    );
    h.runner.assign(batch('b1', assignment('s1', 'wait'), assignment('s2', 'wait')));
    await started.opened;
    const pending = h.runner.drop([stepKey('s1', 1), stepKey('s2', 1)], 'cancelled', 'operator said stop');
    expect(pending).toEqual([stepKey('s1', 1), stepKey('s2', 1)]);
    await h.runner.whenIdle();
    expect(reason).toBeInstanceOf(CancelledError);
    expect(reason).toMatchObject({ kind: 'cancelled', message: 'operator said stop' });
    expect(ran).toBe(1);
    expect(h.reports.unackedCount).toBe(0); // s1's StepStarted was forgotten too
    expect(h.reports.take().flatMap((b) => b.batches)).toEqual([{ batchId: 'b1', completed: 0, failed: 0 }]);
    expect(h.events).toEqual(['cancelled s1 cancelled', 'cancelled s2 cancelled']);
  });

  it('handles refused reports by reason: stale drops the step, a refused payload fails it for good', async () => {
    const started = gate();
    const h = harness({
      wait: async (_step, ctx) => {
        started.open();
        await new Promise((r) => ctx.signal.addEventListener('abort', r));
      },
      big: () => ({ big: true }),
    });
    h.runner.assign(batch('b1', assignment('s1', 'wait'), assignment('s2', 'big')));
    await started.opened;
    await new Promise((r) => setImmediate(r));
    const reports = h.sent();
    const s1Started = reports.find((r) => r.stepId === 's1')!;
    const s2Final = reports.find((r) => r.stepId === 's2' && r.kind?.$case === 'completed')!;
    const reject = (r: StepReport, reason: RejectReason) => {
      const ack = { reportId: r.reportId, stepId: r.stepId, attempt: r.attempt, status: AckStatus.ACK_STATUS_REJECTED, reason, message: 'no' };
      const held = h.reports.ack(r.reportId, { status: 'rejected', reportId: r.reportId, reason: String(reason), message: 'no' });
      h.runner.onRejected(ack, held);
    };
    reject(s1Started, RejectReason.REJECT_REASON_STALE_ATTEMPT);
    reject(s2Final, RejectReason.REJECT_REASON_PAYLOAD_TOO_LARGE);
    await h.runner.whenIdle();
    expect(h.events).toEqual(['rejected s1 STALE_ATTEMPT', 'cancelled s1 lost', 'rejected s2 PAYLOAD_TOO_LARGE']);
    const replacement = h.sent().find((r) => r.stepId === 's2')!;
    expect(replacement.kind?.$case === 'failed' && replacement.kind.value.error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', retryable: false });
  });

  it('rejects progress that is refused, too large or not JSON, without crashing a handler that ignores it', async () => {
    const outcomes: unknown[] = [];
    const h = harness({
      work: async (_step, ctx) => {
        void ctx.progress({ unawaited: true });
        outcomes.push(await ctx.progress({ n: 1n }).catch((e: unknown) => e));
        h.runner.maxReportBytes = 200;
        outcomes.push(await ctx.progress({ pad: 'x'.repeat(500) }).catch((e: unknown) => e));
        h.runner.maxReportBytes = 0;
        const refused = ctx.progress({ n: 2 }).catch((e: unknown) => e);
        await new Promise((r) => setImmediate(r));
        const report = h.sent().find((r) => r.kind?.$case === 'progress' && r.kind.value.seq === 2)!;
        h.reports.ack(report.reportId, { status: 'rejected', reportId: report.reportId, reason: 'STEP_NOT_RUNNING', message: 'gone' });
        outcomes.push(await refused);
      },
    });
    h.runner.assign(batch('b1', assignment('s1', 'work')));
    await h.runner.whenIdle();
    expect(outcomes[0]).toBeInstanceOf(TypeError);
    expect(outcomes[1]).toBeInstanceOf(PermanentError);
    expect(outcomes[1]).toMatchObject({ code: 'PAYLOAD_TOO_LARGE' });
    expect(outcomes[2]).toBeInstanceOf(ReportRejectedError);
    expect(outcomes[2]).toMatchObject({ reason: 'STEP_NOT_RUNNING', stepId: 's1' });
  });

  it('sends the calling handler’s final report twice when the duplicate switch is armed', async () => {
    const h = harness({
      dup: () => {
        h.runner.armDuplicate();
        return { ok: true };
      },
      plain: () => ({ ok: true }),
    });
    h.runner.assign(batch('b1', assignment('s1', 'plain'), assignment('s2', 'dup')));
    await h.runner.whenIdle();
    const sent = h.reports.take();
    const finals = sent.flatMap((b) => b.reports).filter((r) => r.kind?.$case === 'completed');
    expect(finals.map((r) => r.stepId).sort()).toEqual(['s1', 's2', 's2']);
    const s2 = finals.filter((r) => r.stepId === 's2');
    expect(s2[0]!.reportId).toBe(s2[1]!.reportId);
  });

  it('when the stop grace period is over, running handlers are aborted but still report; waiting steps fail retryably', async () => {
    const started = gate();
    const h = harness(
      {
        wait: async (_step, ctx) => {
          started.open();
          await new Promise((r) => ctx.signal.addEventListener('abort', r));
          throw ctx.signal.reason;
        },
      },
      1,
    );
    h.runner.assign(batch('b1', assignment('s1', 'wait'), assignment('s2', 'wait')));
    await started.opened;
    expect(h.runner.abortAll('SIGTERM')).toBe(1);
    await h.runner.whenIdle();
    const finals = h.sent().filter((r) => r.kind?.$case === 'failed');
    const errors = Object.fromEntries(finals.map((r) => [r.stepId, r.kind?.$case === 'failed' ? r.kind.value.error : null]));
    expect(errors.s1).toMatchObject({ errorClass: 'CancelledError', code: 'STEP_STOPPING', retryable: true });
    expect(errors.s2).toMatchObject({ code: 'WORKER_STOPPING', retryable: true, retryAfterMs: 0 });
  });
});
