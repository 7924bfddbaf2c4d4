/**
 * Step reports kept until the server acknowledges them.
 *
 * Invariants:
 * - `reportId` comes from a per-worker counter, so ids increase in the order reports
 *   were produced; resending in id order keeps the order the server needs per
 *   (step_id, attempt).
 * - A report stays in `#unacked` from {@link ReportBuffer.add} until its ResultAck
 *   (or until its step is discarded). `#unsent` lists the ids still to be written to
 *   the current stream; after a reconnect {@link ReportBuffer.resendAll} refills it
 *   with every unacknowledged id, unchanged.
 * - Every report's `onAck` callback is called exactly once: on its ack, or when it is
 *   discarded or refused locally.
 */
import { BinaryWriter } from '@bufbuild/protobuf/wire';
import type { BatchCompleted, ReportBatch } from '../gen/tasker/v1/worker.js';
import { StepReport } from '../gen/tasker/v1/worker.js';

/** Bytes a `WorkerMessage{reports: ReportBatch{...}}` adds around its items, with margin. */
export const ENVELOPE_BYTES = 16;

/** How a report's fate was decided. */
export type AckOutcome =
  | { readonly status: 'accepted' | 'duplicate' }
  | { readonly status: 'rejected'; readonly reportId: number; readonly reason: string; readonly message: string }
  | { readonly status: 'discarded'; readonly error: Error };

/** Called once with a report's fate. */
export type AckCallback = (outcome: AckOutcome) => void;

/** Options of {@link ReportBuffer.add}. */
export interface AddOptions {
  /** Send the report twice (the documented `duplicateNextReport` test switch). */
  readonly duplicate?: boolean;
  readonly onAck?: AckCallback;
}

interface Held {
  report: StepReport;
  onAck: AckCallback | undefined;
  duplicate: boolean;
}

/** `(step_id, attempt)` as one map key. */
export function stepKey(stepId: string, attempt: number): string {
  return `${stepId}#${attempt}`;
}

function varintLength(value: number): number {
  let length = 1;
  while (value >= 0x80) {
    value = Math.floor(value / 128);
    length += 1;
  }
  return length;
}

/** Bytes one report adds to a ReportBatch: field tag, length prefix and body. */
export function encodedReportBytes(report: StepReport): number {
  const body = StepReport.encode(report, new BinaryWriter()).finish().length;
  return 1 + varintLength(body) + body;
}

const fieldBound = (bytes: number): number => bytes + 6; // tag + length prefix (<= 5 bytes) + body

/**
 * An upper bound of {@link encodedReportBytes}, computed without encoding: every
 * field counted with the largest tag and length prefix it can have. Exact sizes are
 * computed only for reports whose bound comes near the limit.
 */
export function reportSizeBound(report: StepReport): number {
  let body = 11 + fieldBound(Buffer.byteLength(report.stepId)) + 6 + 6; // report_id, step_id, attempt, kind header
  const kind = report.kind;
  switch (kind?.$case) {
    case 'progress':
      body += 6 + fieldBound(kind.value.payloadJson.length);
      break;
    case 'completed':
      body += fieldBound(kind.value.resultJson.length);
      break;
    case 'failed': {
      const e = kind.value.error;
      body += 6;
      if (e) {
        body += fieldBound(Buffer.byteLength(e.errorClass)) + fieldBound(Buffer.byteLength(e.message)) + fieldBound(Buffer.byteLength(e.code));
        body += fieldBound(e.detailsJson.length) + 2 + 11;
        for (const frame of e.backtrace) body += fieldBound(Buffer.byteLength(frame));
      }
      break;
    }
    default:
      body += 32; // started: a Timestamp
  }
  return 6 + body;
}

/** Bytes one report adds to a ReportBatch, exact only when the bound does not already fit `limit`. */
function sizeWithin(report: StepReport, limit: number): number {
  const bound = reportSizeBound(report);
  return bound <= limit ? bound : encodedReportBytes(report);
}

/** Bytes one BatchCompleted adds to a ReportBatch (generously: ids are short). */
function batchCompletedBytes(c: BatchCompleted): number {
  return 2 + Buffer.byteLength(c.batchId) + 16;
}

/** The non-retryable StepFailed (code PAYLOAD_TOO_LARGE) that replaces a report that cannot fit. */
export function tooLargeFailure(report: StepReport, limit: number): StepReport {
  const kind = report.kind?.$case ?? 'unknown';
  return {
    reportId: report.reportId,
    stepId: report.stepId,
    attempt: report.attempt,
    kind: {
      $case: 'failed',
      value: {
        error: {
          errorClass: 'PayloadTooLarge',
          message: `a ${kind} report of ${encodedReportBytes(report)} bytes exceeds the server's limit of ${limit} bytes`,
          backtrace: [],
          retryable: false,
          code: 'PAYLOAD_TOO_LARGE',
          detailsJson: Buffer.alloc(0),
        },
      },
    },
  };
}

/** Step reports and batch completions awaiting delivery and acknowledgement. */
export class ReportBuffer {
  #nextId = 1;
  readonly #unacked = new Map<number, Held>();
  #unsent: number[] = [];
  #batches: BatchCompleted[] = [];
  #idleWaiters: Array<() => void> = [];
  #onQueued: () => void;

  /** `onQueued` runs whenever something new waits to be sent (the session schedules a flush). */
  constructor(onQueued: () => void = () => undefined) {
    this.#onQueued = onQueued;
  }

  /** Replaces the hook run when something new waits to be sent. */
  setOnQueued(fn: () => void): void {
    this.#onQueued = fn;
  }

  /** Assigns the next report_id, keeps the report and queues it for sending; returns the id. */
  add(report: Omit<StepReport, 'reportId'>, options: AddOptions = {}): number {
    const reportId = this.#nextId++;
    this.#unacked.set(reportId, { report: { ...report, reportId }, onAck: options.onAck, duplicate: options.duplicate ?? false });
    this.#unsent.push(reportId);
    this.#onQueued();
    return reportId;
  }

  /** Queues a BatchCompleted; it rides along with the next reports and is never acknowledged. */
  addBatchCompleted(completed: BatchCompleted): void {
    this.#batches.push(completed);
    this.#onQueued();
  }

  /** True when reports or batch completions wait to be written. */
  get hasUnsent(): boolean {
    return this.#unsent.length > 0 || this.#batches.length > 0;
  }

  /** Reports not yet acknowledged. */
  get unackedCount(): number {
    return this.#unacked.size;
  }

  /** Reports not yet acknowledged, in report_id order. */
  unackedReports(): StepReport[] {
    return [...this.#unacked.values()].map((h) => h.report);
  }

  /**
   * Removes everything unsent and packs it into ReportBatch messages, each below
   * `maxBytes` once wrapped in a WorkerMessage (0 = no limit). A report that cannot
   * fit even alone is replaced, under the same report_id, by a StepFailed with code
   * PAYLOAD_TOO_LARGE. A report marked duplicate is followed by a ReportBatch
   * holding it again.
   */
  take(maxBytes = 0): ReportBatch[] {
    const ids = this.#unsent;
    const completions = this.#batches;
    this.#unsent = [];
    this.#batches = [];
    const limit = maxBytes > 0 ? maxBytes - ENVELOPE_BYTES : 0;
    const reports: Sized[] = [];
    const duplicates: StepReport[] = [];
    for (const id of ids) {
      const held = this.#unacked.get(id);
      if (!held) continue;
      let size = limit > 0 ? sizeWithin(held.report, limit) : 0;
      if (size > limit) {
        held.report = tooLargeFailure(held.report, maxBytes);
        size = sizeWithin(held.report, limit);
        const onAck = held.onAck;
        held.onAck = undefined;
        onAck?.({ status: 'rejected', reportId: held.report.reportId, reason: 'PAYLOAD_TOO_LARGE', message: `the report exceeds the server's limit of ${maxBytes} bytes` });
      }
      reports.push({ report: held.report, size });
      if (held.duplicate) {
        held.duplicate = false;
        duplicates.push(held.report);
      }
    }
    const out = pack(reports, completions, limit);
    for (const report of duplicates) out.push({ reports: [report], batches: [] });
    return out;
  }

  /** After a resumed Welcome: queues every unacknowledged report again, in id order; returns how many. */
  resendAll(): number {
    this.#unsent = [...this.#unacked.keys()];
    if (this.#unsent.length > 0) this.#onQueued();
    return this.#unsent.length;
  }

  /** Settles an acknowledged report; returns it, or undefined if it was not held (a duplicate's second ack). */
  ack(reportId: number, outcome: AckOutcome): StepReport | undefined {
    const held = this.#unacked.get(reportId);
    if (!held) return undefined;
    this.#unacked.delete(reportId);
    held.onAck?.(outcome);
    this.#checkIdle();
    return held.report;
  }

  /** Forgets every report about the given step keys ({@link stepKey}); returns how many were dropped. */
  discardSteps(keys: ReadonlySet<string>, error: Error): number {
    const drop: number[] = [];
    for (const [id, held] of this.#unacked) {
      if (keys.has(stepKey(held.report.stepId, held.report.attempt))) drop.push(id);
    }
    this.#discard(drop, error);
    return drop.length;
  }

  /** Forgets every report and batch completion (their session is gone); returns how many reports were dropped. */
  discardAll(error: Error): number {
    const drop = [...this.#unacked.keys()];
    this.#batches = [];
    this.#discard(drop, error);
    return drop.length;
  }

  #discard(ids: readonly number[], error: Error): void {
    if (ids.length === 0) return;
    const dropped = new Set(ids);
    const callbacks: AckCallback[] = [];
    for (const id of ids) {
      const held = this.#unacked.get(id);
      this.#unacked.delete(id);
      if (held?.onAck) callbacks.push(held.onAck);
    }
    this.#unsent = this.#unsent.filter((id) => !dropped.has(id));
    for (const cb of callbacks) cb({ status: 'discarded', error });
    this.#checkIdle();
  }

  /** Resolves once no report awaits its ack (at once when none does). */
  whenAllAcked(): Promise<void> {
    if (this.#unacked.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #checkIdle(): void {
    if (this.#unacked.size > 0 || this.#idleWaiters.length === 0) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }
}

interface Sized {
  readonly report: StepReport;
  /** Bytes in a ReportBatch (at most this many); 0 when no limit applies. */
  readonly size: number;
}

/** Splits reports and completions into as few ReportBatch messages as the limit allows. */
function pack(reports: readonly Sized[], completions: readonly BatchCompleted[], limit: number): ReportBatch[] {
  const out: ReportBatch[] = [];
  let current: ReportBatch = { reports: [], batches: [] };
  let size = 0;
  const startNew = (itemSize: number): void => {
    if (limit > 0 && size > 0 && size + itemSize > limit) {
      out.push(current);
      current = { reports: [], batches: [] };
      size = 0;
    }
    size += itemSize;
  };
  for (const { report, size: itemSize } of reports) {
    startNew(itemSize);
    current.reports.push(report);
  }
  for (const completed of completions) {
    startNew(limit > 0 ? batchCompletedBytes(completed) : 0);
    current.batches.push(completed);
  }
  if (current.reports.length > 0 || current.batches.length > 0) out.push(current);
  return out;
}
