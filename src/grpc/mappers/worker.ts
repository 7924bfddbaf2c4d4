/**
 * WorkerService messages ↔ domain. Inbound reports are checked here, before they
 * reach the database: a report that is malformed (no kind, invalid UTF-8 or JSON, a
 * progress seq of 0), too large, or names something that cannot exist (a step id
 * that is not a UUID, an attempt outside 1..2^31-1) is refused on its own with a
 * reject ack and never touches a transaction shared with other reports.
 */
import type { StepFailure } from '../../engine/failures.js';
import type { OutcomeReport } from '../../engine/outcomes.js';
import type { ReportAck, ReportSubmission, RejectReasonCode } from '../../engine/result-processor.js';
import type { ClaimedBatch } from '../../engine/claims.js';
import type { OpenedSession } from '../../engine/session-manager.js';
import { isUuid } from '../../domain/ids.js';
import type { LeasedStepRef, SessionProfile } from '../../store/sessions.js';
import type { StepError } from '../../gen/tasker/v1/common.js';
import { AckStatus, RejectReason } from '../../gen/tasker/v1/worker.js';
import type { Hello, ReportBatch, ServerMessage, StepAssignment, StepReport } from '../../gen/tasker/v1/worker.js';

const INT32_MAX = 2_147_483_647;
/** Backtrace frames kept per failure. */
const MAX_BACKTRACE_FRAMES = 100;

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Hello's profile fields (templates and the resume handle are handled by the service). */
export function profileFromHello(hello: Hello): SessionProfile {
  return {
    workerName: hello.workerName,
    language: hello.language,
    sdkVersion: hello.sdkVersion,
    handlers: hello.handlers,
    namespaces: hello.namespaces,
    labels: hello.labels,
    maxInFlight: hello.maxInFlight,
  };
}

/** The Welcome for an opened session. */
export function welcomeMessage(opened: OpenedSession): ServerMessage {
  return {
    kind: {
      $case: 'welcome',
      value: {
        sessionId: opened.session.id,
        sessionHandle: opened.handle,
        heartbeatIntervalMs: opened.heartbeatIntervalMs,
        leaseMs: opened.leaseMs,
        sessionExpiresAt: opened.expiresAt,
        resumed: opened.resumed,
        inFlight: opened.inFlight.map((s) => ({ stepId: s.stepId, attempt: s.attempt })),
        serverInstance: opened.serverInstance,
        maxReportBytes: opened.maxReportBytes,
      },
    },
  };
}

/** A StepBatch for claimed steps. */
export function batchMessage(batch: ClaimedBatch): ServerMessage {
  return {
    kind: {
      $case: 'batch',
      value: {
        batchId: batch.batchId,
        steps: batch.assignments.map(
          (a): StepAssignment => ({
            stepId: a.stepId,
            attempt: a.attempt,
            taskId: a.taskId,
            template: { namespace: a.namespace, name: a.taskName, version: a.version },
            stepName: a.stepName,
            handler: a.handler,
            handlerConfigJson: Buffer.from(a.handlerConfigJson, 'utf8'),
            contextJson: Buffer.from(a.contextJson, 'utf8'),
            ancestorResultsJson: Buffer.from(a.ancestorResultsJson, 'utf8'),
            deadline: a.deadline ?? undefined,
            correlationId: a.correlationId ?? '',
            maxAttempts: a.maxAttempts,
            timeoutMs: a.timeoutMs ?? 0,
          }),
        ),
      },
    },
  };
}

const ACK_STATUS: Readonly<Record<ReportAck['status'], AckStatus>> = {
  accepted: AckStatus.ACK_STATUS_ACCEPTED,
  duplicate: AckStatus.ACK_STATUS_DUPLICATE,
  rejected: AckStatus.ACK_STATUS_REJECTED,
};

const REJECT_REASON: Readonly<Record<RejectReasonCode, RejectReason>> = {
  stale_attempt: RejectReason.REJECT_REASON_STALE_ATTEMPT,
  unknown_step: RejectReason.REJECT_REASON_UNKNOWN_STEP,
  not_leased_to_session: RejectReason.REJECT_REASON_NOT_LEASED_TO_SESSION,
  step_not_running: RejectReason.REJECT_REASON_STEP_NOT_RUNNING,
  invalid_payload: RejectReason.REJECT_REASON_INVALID_PAYLOAD,
  payload_too_large: RejectReason.REJECT_REASON_PAYLOAD_TOO_LARGE,
  task_cancelled: RejectReason.REJECT_REASON_TASK_CANCELLED,
};

/** One AckBatch. */
export function acksMessage(acks: readonly ReportAck[]): ServerMessage {
  return {
    kind: {
      $case: 'acks',
      value: {
        acks: acks.map((a) => ({
          reportId: Number(a.reportId),
          stepId: a.stepId,
          attempt: a.attempt,
          status: ACK_STATUS[a.status],
          reason: a.reason ? REJECT_REASON[a.reason] : RejectReason.REJECT_REASON_UNSPECIFIED,
          message: a.message,
        })),
      },
    },
  };
}

/** A Cancel. */
export function cancelMessage(steps: readonly LeasedStepRef[], reason: string): ServerMessage {
  return { kind: { $case: 'cancel', value: { steps: steps.map((s) => ({ stepId: s.stepId, attempt: s.attempt })), reason } } };
}

/** A Drain from the server. */
export function drainMessage(reason: string, graceMs: number): ServerMessage {
  return { kind: { $case: 'drain', value: { reason, graceMs: Math.max(0, Math.min(Math.round(graceMs), 0xffffffff)) } } };
}

/** Thrown inside report parsing: becomes one reject ack. */
class Refusal {
  constructor(
    readonly reason: RejectReasonCode,
    readonly message: string,
  ) {}
}

/** UTF-8 JSON text of `bytes` (empty = `null`), checked the way PostgreSQL's jsonb will read it. */
function jsonText(bytes: Uint8Array, what: string, requireObject = false): string {
  if (bytes.length === 0) return requireObject ? '{}' : 'null';
  let text: string;
  let value: unknown;
  try {
    text = utf8.decode(bytes);
    value = JSON.parse(text);
  } catch {
    throw new Refusal('invalid_payload', `${what} is not UTF-8 JSON`);
  }
  if (requireObject && (value === null || typeof value !== 'object' || Array.isArray(value))) {
    throw new Refusal('invalid_payload', `${what} must be a JSON object`);
  }
  // jsonb refuses the NUL character (SQLSTATE 22P05); only parse deeper when the escape appears at all.
  if (text.includes('\\u0000') && containsNul(value)) throw new Refusal('invalid_payload', `${what} contains a NUL character`);
  return text;
}

function containsNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\0');
  if (Array.isArray(value)) return value.some(containsNul);
  if (value && typeof value === 'object') return Object.entries(value).some(([k, v]) => k.includes('\0') || containsNul(v));
  return false;
}

const noNul = (text: string): string => (text.includes('\0') ? text.replace(/\0/g, '') : text);

function failureFromProto(error: StepError | undefined): StepFailure {
  if (!error) throw new Refusal('invalid_payload', 'a StepFailed report needs an error');
  const details = jsonText(error.detailsJson, 'error details_json', true);
  const retryAfter = error.retryAfterMs;
  return {
    errorClass: noNul(error.errorClass) || 'Error',
    message: noNul(error.message),
    backtrace: error.backtrace.slice(0, MAX_BACKTRACE_FRAMES).map(noNul),
    retryable: error.retryable,
    retryAfterMs: retryAfter === undefined ? null : Math.max(0, Math.min(retryAfter, INT32_MAX)),
    code: noNul(error.code) || null,
    // Empty bytes = no details; otherwise a JSON object (checked above), kept in the error document.
    details: error.detailsJson.length === 0 ? null : (JSON.parse(details) as Record<string, unknown>),
  };
}

/** Bytes of the payloads a report asks the server to store (what `max_report_bytes` limits). */
function payloadBytes(r: StepReport): number {
  const kind = r.kind;
  switch (kind?.$case) {
    case 'progress':
      return kind.value.payloadJson.length;
    case 'completed':
      return kind.value.resultJson.length;
    case 'failed': {
      const e = kind.value.error;
      if (!e) return 0;
      return (
        e.detailsJson.length + Buffer.byteLength(e.errorClass) + Buffer.byteLength(e.message) + Buffer.byteLength(e.code) +
        e.backtrace.reduce((n, f) => n + Buffer.byteLength(f), 0)
      );
    }
    default:
      return 0;
  }
}

/** One StepReport as an outcome report (throws Refusal). */
function reportFromProto(r: StepReport, reportId: string): OutcomeReport {
  const base = { reportId, stepId: r.stepId, attempt: r.attempt };
  const kind = r.kind;
  switch (kind?.$case) {
    case 'started':
      return { ...base, kind: 'started' };
    case 'progress':
      if (kind.value.seq === 0) throw new Refusal('invalid_payload', 'a progress seq starts at 1');
      return { ...base, kind: 'progress', seq: kind.value.seq, payloadJson: jsonText(kind.value.payloadJson, 'progress payload_json') };
    case 'completed':
      return { ...base, kind: 'completed', resultJson: jsonText(kind.value.resultJson, 'result_json') };
    case 'failed':
      return { ...base, kind: 'failed', error: failureFromProto(kind.value.error) };
    default:
      throw new Refusal('invalid_payload', 'the report has no kind');
  }
}

/**
 * A ReportBatch as a submission for the result processor: the reports to commit,
 * and those refused here (each with its reject ack). A report whose JSON payloads
 * together exceed `maxReportBytes` is refused with PAYLOAD_TOO_LARGE.
 */
export function submissionFromReports(batch: ReportBatch, maxReportBytes: number): ReportSubmission {
  const reports: OutcomeReport[] = [];
  const refused: ReportAck[] = [];
  for (const r of batch.reports) {
    const reportId = String(r.reportId);
    const refuse = (reason: RejectReasonCode, message: string): void => {
      refused.push({ reportId, stepId: r.stepId, attempt: r.attempt, status: 'rejected', reason, message });
    };
    if (!isUuid(r.stepId)) {
      refuse('unknown_step', `no step has id ${JSON.stringify(r.stepId.slice(0, 64))}`);
      continue;
    }
    if (!(r.attempt >= 1 && r.attempt <= INT32_MAX)) {
      refuse('stale_attempt', `attempt ${r.attempt} of step ${r.stepId} was never dispatched`);
      continue;
    }
    const size = payloadBytes(r);
    if (size > maxReportBytes) {
      refuse('payload_too_large', `the report carries ${size} bytes of payload; this server accepts at most ${maxReportBytes}`);
      continue;
    }
    try {
      reports.push(reportFromProto(r, reportId));
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      refuse(err.reason, err.message);
    }
  }
  const batches = batch.batches
    .filter((b) => isUuid(b.batchId))
    .map((b) => ({ batchId: b.batchId, completed: b.completed, failed: b.failed }));
  return { reports, refused, batches };
}
