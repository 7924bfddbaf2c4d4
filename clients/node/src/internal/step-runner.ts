/**
 * Runs assigned steps, at most `concurrency` at once, and turns their outcomes into
 * reports in the {@link ReportBuffer}.
 *
 * A job is *dropped* when its step is no longer this worker's (the server cancelled
 * it, refused one of its reports, or did not list it on resume): its signal aborts and
 * it produces no further reports. A job whose signal aborts because of its deadline
 * or because the worker is stopping still reports its outcome.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { StepBatch, StepReport, ResultAck } from '../gen/tasker/v1/worker.js';
import { RejectReason, rejectReasonToJSON } from '../gen/tasker/v1/worker.js';
import { CancelledError, PermanentError, ReportRejectedError } from '../errors.js';
import type { CancelKind } from '../errors.js';
import type { Step, StepHandler } from '../handler.js';
import { failure, stepErrorFrom, stepFromAssignment } from '../handler.js';
import type { StepFailure } from '../models.js';
import { failureFromProto } from '../models.js';
import { BatchTracker } from './batch-tracker.js';
import { encodeJson } from './json.js';
import type { Logger } from './logger.js';
import type { AckOutcome, ReportBuffer } from './report-buffer.js';
import { stepKey } from './report-buffer.js';
import { SlotQueue } from './slot-queue.js';
import type { Job } from './step-job.js';
import { abortJob, armDeadline, createJob, disarmDeadline, fitFinal, fits, reportFor } from './step-job.js';

/** What the runner tells the worker about. */
export interface RunnerEvents {
  /** A completion was committed by the server. */
  completed(step: Step, result: unknown): void;
  /** A failure was committed by the server. */
  failed(step: Step, failure: StepFailure, thrown: unknown): void;
  /** A held step was taken away (cancelled, lost). */
  cancelled(step: Step, reason: CancelledError): void;
  /** The server refused a report. */
  rejected(error: ReportRejectedError): void;
}

/** What the runner needs. */
export interface RunnerOptions {
  readonly handlers: ReadonlyMap<string, StepHandler>;
  readonly reports: ReportBuffer;
  readonly concurrency: number;
  readonly logger: Logger;
  readonly events: RunnerEvents;
}

const swallow = (): void => undefined;

/** Owns the steps this worker holds, from assignment to final report. */
export class StepRunner {
  /** Welcome.max_report_bytes of the current session (0 = unknown, no check). */
  maxReportBytes = 0;
  readonly #o: RunnerOptions;
  readonly #jobs = new Map<string, Job>();
  readonly #queue: SlotQueue<Job>;
  readonly #batches = new BatchTracker();
  readonly #current = new AsyncLocalStorage<Job>();
  #duplicateAny = false;
  #idleWaiters: Array<() => void> = [];

  constructor(options: RunnerOptions) {
    this.#o = options;
    this.#queue = new SlotQueue<Job>(options.concurrency, (job) => void this.#run(job));
  }

  /** Steps held (running or waiting for a slot). */
  get held(): number {
    return this.#jobs.size;
  }

  /** Handlers running now. */
  get running(): number {
    return this.#queue.running;
  }

  /** Step keys held. */
  heldKeys(): Set<string> {
    return new Set(this.#jobs.keys());
  }

  /** Changes the number of handlers run at once. */
  setConcurrency(concurrency: number): void {
    this.#queue.setLimit(concurrency);
  }

  /** Takes every step of a batch; returns how many were new. */
  assign(batch: StepBatch): number {
    const taken: Job[] = [];
    for (const assignment of batch.steps) {
      const { step, invalid } = stepFromAssignment(assignment, batch.batchId);
      const job = createJob(step, invalid, this.#o.logger, (j, payload) => this.#progress(j, payload));
      if (this.#jobs.has(job.key)) {
        this.#o.logger.warn({ stepId: step.id, attempt: step.attempt }, 'step attempt assigned twice; keeping the first');
        continue;
      }
      this.#jobs.set(job.key, job);
      taken.push(job);
    }
    this.#batches.open(batch.batchId, taken.map((j) => j.key));
    for (const job of taken) this.#queue.push(job);
    return taken.length;
  }

  async #run(job: Job): Promise<void> {
    if (job.dropped) return this.#settle(job, null);
    job.started = true;
    this.#add(job, reportFor(job, { $case: 'started', value: { startedAt: new Date() } }));
    armDeadline(job);
    let final: Omit<StepReport, 'reportId'>;
    let result: unknown = null;
    let thrown: unknown = null;
    try {
      if (job.invalid) throw new PermanentError(job.invalid.message, { code: job.invalid.code });
      const handler = this.#o.handlers.get(job.step.handler);
      if (!handler) throw new PermanentError(`no handler registered for "${job.step.handler}"`, { code: 'HANDLER_NOT_FOUND' });
      result = await this.#current.run(job, () => handler(job.step, job.ctx));
      final = this.#completedReport(job, result);
    } catch (err) {
      thrown = err;
      final = job.invalid
        ? reportFor(job, { $case: 'failed', value: { error: job.invalid } })
        : reportFor(job, { $case: 'failed', value: { error: stepErrorFrom(err) } });
    } finally {
      disarmDeadline(job);
    }
    this.#settle(job, fitFinal(final, this.maxReportBytes), result, thrown);
  }

  /** The completion report, or a non-retryable RESULT_NOT_SERIALIZABLE failure when the result is not JSON. */
  #completedReport(job: Job, result: unknown): Omit<StepReport, 'reportId'> {
    try {
      return reportFor(job, { $case: 'completed', value: { resultJson: encodeJson(result) } });
    } catch (err) {
      const e = err instanceof Error ? err : new TypeError(String(err));
      const error = failure(e.name, `handler result is not JSON-serializable: ${e.message}`, false, { code: 'RESULT_NOT_SERIALIZABLE' });
      return reportFor(job, { $case: 'failed', value: { error } });
    }
  }

  /** Ends a job: queues its final report (unless dropped), settles its batch, frees its slot. */
  #settle(job: Job, final: Omit<StepReport, 'reportId'> | null, result: unknown = null, thrown: unknown = null): void {
    if (this.#jobs.get(job.key) === job) this.#jobs.delete(job.key);
    let outcome: 'completed' | 'failed' | 'dropped' = 'dropped';
    if (final && !job.dropped) {
      const kind = final.kind;
      outcome = kind?.$case === 'completed' ? 'completed' : 'failed';
      const duplicate = job.duplicateNext || this.#duplicateAny;
      job.duplicateNext = false;
      this.#duplicateAny = false;
      this.#add(job, final, duplicate, (ack) => {
        if (ack.status !== 'accepted' && ack.status !== 'duplicate') return;
        if (kind?.$case === 'completed') this.#o.events.completed(job.step, result);
        else if (kind?.$case === 'failed' && kind.value.error) this.#o.events.failed(job.step, failureFromProto(kind.value.error), thrown);
      });
    }
    const completed = this.#batches.settle(job.key, outcome);
    if (completed) this.#o.reports.addBatchCompleted(completed);
    if (job.started) this.#queue.release();
    if (this.#jobs.size === 0) this.#wakeIdle();
  }

  #add(job: Job, report: Omit<StepReport, 'reportId'>, duplicate = false, onAck?: (outcome: AckOutcome) => void): void {
    if (!job.dropped) this.#o.reports.add(report, { duplicate, onAck });
  }

  #progress(job: Job, payload: unknown): Promise<void> {
    const promise = new Promise<void>((resolve, reject) => {
      if (job.dropped) return reject(job.controller.signal.reason);
      if (this.#jobs.get(job.key) !== job) return reject(new Error(`step ${job.step.id} attempt ${job.step.attempt} has already ended`));
      const report = reportFor(job, { $case: 'progress', value: { seq: job.seq + 1, payloadJson: encodeJson(payload) } });
      if (!fits(report, this.maxReportBytes)) {
        return reject(new PermanentError(`progress payload exceeds the server's limit of ${this.maxReportBytes} bytes`, { code: 'PAYLOAD_TOO_LARGE' }));
      }
      job.seq += 1;
      this.#add(job, report, false, (ack) => {
        if (ack.status === 'discarded') reject(ack.error);
        else if (ack.status !== 'rejected') resolve();
        else reject(new ReportRejectedError({ reason: ack.reason, stepId: job.step.id, attempt: job.step.attempt, reportId: ack.reportId, message: ack.message }));
      });
    });
    promise.catch(swallow);
    return promise;
  }

  /** Test switch: the next final report is sent twice — the calling handler's, else any step's. */
  armDuplicate(): void {
    const job = this.#current.getStore();
    if (job) job.duplicateNext = true;
    else this.#duplicateAny = true;
  }

  /**
   * Reacts to a REJECTED ack. A refused final payload (PAYLOAD_TOO_LARGE,
   * INVALID_PAYLOAD) is replaced by a non-retryable failure with the reason as code,
   * so the step fails now instead of timing out; any other reason means the step is no
   * longer this worker's, and it is dropped.
   */
  onRejected(ack: ResultAck, report: StepReport | undefined): void {
    const reason = rejectReasonToJSON(ack.reason).replace('REJECT_REASON_', '');
    this.#o.events.rejected(new ReportRejectedError({ reason, stepId: ack.stepId, attempt: ack.attempt, reportId: ack.reportId, message: ack.message }));
    const payloadRefused = ack.reason === RejectReason.REJECT_REASON_PAYLOAD_TOO_LARGE || ack.reason === RejectReason.REJECT_REASON_INVALID_PAYLOAD;
    if (payloadRefused) {
      const kind = report?.kind;
      const already = kind?.$case === 'failed' && kind.value.error?.code === reason;
      if ((kind?.$case === 'completed' || kind?.$case === 'failed') && !already) {
        const error = failure('PayloadRejected', ack.message || `the server refused the ${kind.$case} report`, false, { code: reason });
        this.#o.reports.add({ stepId: ack.stepId, attempt: ack.attempt, kind: { $case: 'failed', value: { error } } });
      }
      return;
    }
    const kind: CancelKind = ack.reason === RejectReason.REJECT_REASON_TASK_CANCELLED ? 'cancelled' : 'lost';
    this.drop([stepKey(ack.stepId, ack.attempt)], kind, `report rejected: ${reason}`);
  }

  /** Takes the given steps away: aborts their signals and forgets their reports; returns the keys that were held. */
  drop(keys: Iterable<string>, kind: CancelKind, reason: string): string[] {
    const wanted = new Set(keys);
    const hit: string[] = [];
    const error = new CancelledError(kind, reason);
    for (const key of wanted) {
      const job = this.#jobs.get(key);
      if (!job || job.dropped) continue;
      job.dropped = true;
      abortJob(job, kind, reason);
      hit.push(key);
      this.#o.events.cancelled(job.step, error);
    }
    this.#o.reports.discardSteps(wanted, error);
    for (const job of this.#queue.remove((j) => j.dropped)) this.#settle(job, null);
    return hit;
  }

  /** Drops every held step not in `keep` (after a resume or a new session). */
  dropAllExcept(keep: ReadonlySet<string>, kind: CancelKind, reason: string): string[] {
    return this.drop([...this.#jobs.keys()].filter((k) => !keep.has(k)), kind, reason);
  }

  /**
   * The stop grace period is over: running handlers see their signal abort (their
   * outcomes are still reported), and steps still waiting for a slot are reported as
   * retryable failures (code WORKER_STOPPING, retry at once) instead of run.
   */
  abortAll(reason: string): number {
    let count = 0;
    for (const job of this.#jobs.values()) if (job.started && abortJob(job, 'stopping', reason)) count += 1;
    for (const job of this.#queue.remove(() => true)) {
      abortJob(job, 'stopping', reason);
      const error = failure('WorkerStopping', `the worker stopped before running the step: ${reason}`, true, { code: 'WORKER_STOPPING', retryAfterMs: 0 });
      this.#settle(job, reportFor(job, { $case: 'failed', value: { error } }));
    }
    return count;
  }

  /** Forgets batch bookkeeping of a session that is gone. */
  forgetBatches(): void {
    this.#batches.clear();
  }

  /** Resolves once no step is held. */
  whenIdle(): Promise<void> {
    if (this.#jobs.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #wakeIdle(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }
}
