/** One assigned step attempt held by the worker, from assignment to final report. */
import type { StepError } from '../gen/tasker/v1/common.js';
import type { StepReport } from '../gen/tasker/v1/worker.js';
import { CancelledError } from '../errors.js';
import type { CancelKind } from '../errors.js';
import type { Step, StepContext } from '../handler.js';
import { failure } from '../handler.js';
import type { Logger } from './logger.js';
import { withFields } from './logger.js';
import { ENVELOPE_BYTES, encodedReportBytes, reportSizeBound, stepKey, tooLargeFailure } from './report-buffer.js';

/** A held step attempt. */
export interface Job {
  /** {@link stepKey} of the attempt. */
  readonly key: string;
  readonly step: Step;
  /** Set when the assignment could not be decoded: reported instead of running the handler. */
  readonly invalid: StepError | null;
  readonly controller: AbortController;
  readonly ctx: StepContext;
  /** Last progress seq used. */
  seq: number;
  /** The step is no longer this worker's: no further reports. */
  dropped: boolean;
  /** Send the final report twice (test switch). */
  duplicateNext: boolean;
  /** The handler was started. */
  started: boolean;
  deadlineTimer: NodeJS.Timeout | null;
}

/** Builds a job; `progress` is the runner's progress sink. */
export function createJob(
  step: Step,
  invalid: StepError | null,
  logger: Logger,
  progress: (job: Job, payload: unknown) => Promise<void>,
): Job {
  const controller = new AbortController();
  const log = withFields(logger, { stepId: step.id, taskId: step.taskId, attempt: step.attempt, correlationId: step.correlationId });
  const job: Job = {
    key: stepKey(step.id, step.attempt),
    step,
    invalid,
    controller,
    ctx: { signal: controller.signal, log, progress: (payload: unknown) => progress(job, payload) },
    seq: 0,
    dropped: false,
    duplicateNext: false,
    started: false,
    deadlineTimer: null,
  };
  return job;
}

/** Aborts the job's signal with a {@link CancelledError}; false when it already was aborted. */
export function abortJob(job: Job, kind: CancelKind, reason: string): boolean {
  if (job.controller.signal.aborted) return false;
  job.controller.abort(new CancelledError(kind, reason));
  return true;
}

/** Arms the deadline timer (unref'd): at the deadline the signal aborts with kind `deadline`. */
export function armDeadline(job: Job): void {
  const deadline = job.step.deadline;
  if (!deadline) return;
  const delay = Math.max(0, deadline.getTime() - Date.now());
  job.deadlineTimer = setTimeout(() => abortJob(job, 'deadline', `the attempt's deadline ${deadline.toISOString()} passed`), delay);
  job.deadlineTimer.unref();
}

/** Clears the deadline timer. */
export function disarmDeadline(job: Job): void {
  if (job.deadlineTimer) clearTimeout(job.deadlineTimer);
  job.deadlineTimer = null;
}

/** A report about the job's attempt. */
export function reportFor(job: Job, kind: StepReport['kind']): Omit<StepReport, 'reportId'> {
  return { stepId: job.step.id, attempt: job.step.attempt, kind };
}

/** Whether a report fits below the server's limit (`maxBytes` 0 = unknown, always fits). */
export function fits(report: Omit<StepReport, 'reportId'>, maxBytes: number): boolean {
  if (maxBytes <= 0) return true;
  const limit = maxBytes - ENVELOPE_BYTES;
  const full = { ...report, reportId: Number.MAX_SAFE_INTEGER };
  return reportSizeBound(full) <= limit || encodedReportBytes(full) <= limit;
}

/**
 * Makes a final report fit below the server's limit: a failure loses backtrace frames
 * and message text first; whatever still does not fit becomes a non-retryable
 * StepFailed with code PAYLOAD_TOO_LARGE.
 */
export function fitFinal(report: Omit<StepReport, 'reportId'>, maxBytes: number): Omit<StepReport, 'reportId'> {
  if (fits(report, maxBytes)) return report;
  const kind = report.kind;
  if (kind?.$case === 'failed' && kind.value.error) {
    const error = kind.value.error;
    const trimmed = failure(error.errorClass, error.message.slice(0, 1024), error.retryable, {
      code: error.code,
      retryAfterMs: error.retryAfterMs ?? null,
      backtrace: error.backtrace.slice(0, 5),
    });
    trimmed.detailsJson = Buffer.alloc(0);
    const smaller = { ...report, kind: { $case: 'failed' as const, value: { error: trimmed } } };
    if (fits(smaller, maxBytes)) return smaller;
  }
  const { reportId: _ignored, ...replacement } = tooLargeFailure({ ...report, reportId: 0 }, maxBytes);
  return replacement;
}
