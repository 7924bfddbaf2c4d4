/**
 * The worker's session: opens the Connect stream, says Hello (resuming with the
 * session handle when it has one), dispatches what the server sends, writes coalesced
 * reports and heartbeats, and reopens the stream after a failure with jittered
 * exponential backoff.
 *
 * Everything runs on the event loop; nothing here blocks. The session handle is a
 * bearer secret: it is kept in memory and never logged.
 */
import type * as grpc from '@grpc/grpc-js';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { AckBatch, Drain, Hello, ServerMessage, Welcome, WorkerMessage, WorkerServiceClient } from '../gen/tasker/v1/worker.js';
import { AckStatus, rejectReasonToJSON } from '../gen/tasker/v1/worker.js';
import { CancelledError, fromGrpcError } from '../errors.js';
import type { TaskerError } from '../errors.js';
import { failure } from '../handler.js';
import type { Backoff } from './backoff.js';
import type { Logger } from './logger.js';
import type { AckOutcome, ReportBuffer } from './report-buffer.js';
import { stepKey } from './report-buffer.js';
import type { StepRunner } from './step-runner.js';

/** Statuses after which reconnecting cannot help: the worker stops and reports the error. */
const FATAL_STATUSES: ReadonlySet<number> = new Set([
  GrpcStatus.UNAUTHENTICATED,
  GrpcStatus.PERMISSION_DENIED,
  GrpcStatus.INVALID_ARGUMENT,
  GrpcStatus.ALREADY_EXISTS,
  GrpcStatus.UNIMPLEMENTED,
]);
/** Reasons after which reconnecting cannot help, whatever the status. */
const FATAL_REASONS: ReadonlySet<string> = new Set(['HELLO_TEMPLATES_UNSUPPORTED']);

/** What the server said in its latest Welcome (the handle is deliberately absent). */
export interface SessionInfo {
  readonly sessionId: string;
  readonly resumed: boolean;
  /** On resume: the steps still leased to the session. */
  readonly inFlight: ReadonlyArray<{ readonly stepId: string; readonly attempt: number }>;
  readonly serverInstance: string;
  readonly heartbeatIntervalMs: number;
  readonly leaseMs: number;
  readonly maxReportBytes: number;
  readonly sessionExpiresAt: Date | null;
  /** 1 for the first Welcome this worker received, then +1 per Welcome. */
  readonly generation: number;
}

/** A reconnect about to happen. */
export interface ReconnectInfo {
  /** Attempts since the last Welcome. */
  readonly attempt: number;
  readonly delayMs: number;
  /** Why the stream ended; null when the server closed it cleanly. */
  readonly error: TaskerError | null;
}

/** What the session tells the worker about. */
export interface SessionEvents {
  welcome(info: SessionInfo): void;
  reconnecting(info: ReconnectInfo): void;
  fatal(error: TaskerError): void;
  serverDrain(drain: { readonly reason: string; readonly graceMs: number }): void;
}

/** What the session needs. */
export interface SessionOptions {
  readonly client: WorkerServiceClient;
  readonly metadata: grpc.Metadata;
  /** Hello without resume_handle. */
  readonly hello: Hello;
  readonly runner: StepRunner;
  readonly reports: ReportBuffer;
  readonly backoff: Backoff;
  readonly logger: Logger;
  readonly events: SessionEvents;
  /** Heartbeat interval when the server's Welcome names none. */
  readonly fallbackHeartbeatMs: number;
}

interface Stream {
  readonly call: grpc.ClientDuplexStream<WorkerMessage, ServerMessage>;
  welcomed: boolean;
  /** Dropped on purpose by interrupt(): a CANCELLED end is expected. */
  aborted: boolean;
  ended: boolean;
  readonly endWaiters: Array<() => void>;
}

/** Keeps one worker session alive across stream failures. */
export class Session {
  readonly #o: SessionOptions;
  #handle = '';
  #stream: Stream | null = null;
  #info: SessionInfo | null = null;
  #credit: number;
  #drain: Drain | null = null;
  #closing = false;
  #heartbeat: NodeJS.Timeout | null = null;
  #reconnect: NodeJS.Timeout | null = null;
  #flushScheduled = false;

  constructor(options: SessionOptions) {
    this.#o = options;
    this.#credit = options.hello.maxInFlight;
    options.reports.setOnQueued(() => this.#scheduleFlush());
  }

  /** The latest Welcome, or null before the first. */
  get info(): SessionInfo | null {
    return this.#info;
  }

  /** True while a welcomed stream is attached. */
  get connected(): boolean {
    return this.#stream?.welcomed === true && !this.#stream.ended;
  }

  /** Opens the first stream. */
  start(): void {
    this.#connect();
  }

  #connect(): void {
    this.#reconnect = null;
    if (this.#closing) return;
    const call = this.#o.client.connect(this.#o.metadata.clone());
    const stream: Stream = { call, welcomed: false, aborted: false, ended: false, endWaiters: [] };
    this.#stream = stream;
    call.on('data', (message: ServerMessage) => this.#onMessage(stream, message));
    call.on('error', () => undefined); // the 'status' event that follows carries the same status
    call.on('status', (status: grpc.StatusObject) => this.#onEnd(stream, status));
    const hello: Hello = { ...this.#o.hello, resumeHandle: this.#handle, maxInFlight: this.#drain ? 0 : this.#credit };
    call.write({ kind: { $case: 'hello', value: hello } });
  }

  #write(stream: Stream, message: WorkerMessage): void {
    if (!stream.ended) stream.call.write(message);
  }

  #onMessage(stream: Stream, message: ServerMessage): void {
    if (stream !== this.#stream) return;
    const kind = message.kind;
    switch (kind?.$case) {
      case 'welcome':
        return this.#onWelcome(stream, kind.value);
      case 'batch':
        this.#o.runner.assign(kind.value);
        return;
      case 'acks':
        return this.#onAcks(kind.value);
      case 'cancel': {
        const keys = kind.value.steps.map((s) => stepKey(s.stepId, s.attempt));
        const hit = this.#o.runner.drop(keys, 'cancelled', kind.value.reason || 'the task was cancelled');
        this.#o.logger.info({ steps: keys.length, held: hit.length }, 'cancel received');
        return;
      }
      case 'drain':
        this.#o.logger.info({ reason: kind.value.reason, graceMs: kind.value.graceMs }, 'server draining; will reconnect when it closes the stream');
        this.#o.events.serverDrain({ reason: kind.value.reason, graceMs: kind.value.graceMs });
        return;
      default:
        this.#o.logger.debug({}, 'ignoring a server message of unknown kind');
    }
  }

  #onWelcome(stream: Stream, welcome: Welcome): void {
    const { runner, reports } = this.#o;
    if (welcome.sessionHandle) this.#handle = welcome.sessionHandle;
    const inFlight = welcome.inFlight.map((s) => ({ stepId: s.stepId, attempt: s.attempt }));
    let resent = 0;
    if (welcome.resumed) {
      runner.dropAllExcept(new Set(inFlight.map((s) => stepKey(s.stepId, s.attempt))), 'lost', 'the session no longer holds this step');
      this.#reportLost(inFlight);
      resent = reports.resendAll();
    } else {
      const error = new CancelledError('lost', 'the previous session expired');
      const dropped = runner.dropAllExcept(new Set(), 'lost', error.message);
      const lost = reports.discardAll(error);
      runner.forgetBatches();
      if (dropped.length > 0 || lost > 0) this.#o.logger.warn({ steps: dropped.length, reports: lost }, 'new session: abandoned the steps and reports of the old one');
    }
    runner.maxReportBytes = welcome.maxReportBytes;
    stream.welcomed = true;
    const info: SessionInfo = {
      sessionId: welcome.sessionId,
      resumed: welcome.resumed,
      inFlight,
      serverInstance: welcome.serverInstance,
      heartbeatIntervalMs: welcome.heartbeatIntervalMs,
      leaseMs: welcome.leaseMs,
      maxReportBytes: welcome.maxReportBytes,
      sessionExpiresAt: welcome.sessionExpiresAt ?? null,
      generation: (this.#info?.generation ?? 0) + 1,
    };
    this.#info = info;
    this.#o.backoff.reset();
    this.#startHeartbeat(stream, welcome.heartbeatIntervalMs || this.#o.fallbackHeartbeatMs);
    if (this.#drain) this.#write(stream, { kind: { $case: 'drain', value: this.#drain } });
    this.#flush();
    this.#o.logger.info(
      { sessionId: info.sessionId, resumed: info.resumed, inFlight: inFlight.length, resent, server: info.serverInstance },
      info.resumed ? 'session resumed' : 'session started',
    );
    this.#o.events.welcome(info);
  }

  /** Fails (retryably, at once) leased steps this worker never received, instead of letting them time out. */
  #reportLost(inFlight: ReadonlyArray<{ stepId: string; attempt: number }>): void {
    const held = this.#o.runner.heldKeys();
    const reported = new Set(this.#o.reports.unackedReports().map((r) => stepKey(r.stepId, r.attempt)));
    for (const { stepId, attempt } of inFlight) {
      const key = stepKey(stepId, attempt);
      if (held.has(key) || reported.has(key)) continue;
      const error = failure('AssignmentLost', 'the assignment was lost in transit before the worker received it', true, {
        code: 'ASSIGNMENT_LOST',
        retryAfterMs: 0,
      });
      this.#o.reports.add({ stepId, attempt, kind: { $case: 'failed', value: { error } } });
    }
  }

  #onAcks(batch: AckBatch): void {
    for (const ack of batch.acks) {
      let outcome: AckOutcome;
      if (ack.status === AckStatus.ACK_STATUS_ACCEPTED) outcome = { status: 'accepted' };
      else if (ack.status === AckStatus.ACK_STATUS_DUPLICATE) outcome = { status: 'duplicate' };
      else {
        const reason = rejectReasonToJSON(ack.reason).replace('REJECT_REASON_', '');
        outcome = { status: 'rejected', reportId: ack.reportId, reason, message: ack.message };
      }
      const report = this.#o.reports.ack(ack.reportId, outcome);
      if (outcome.status === 'rejected' && report) {
        this.#o.logger.warn({ reportId: ack.reportId, stepId: ack.stepId, attempt: ack.attempt, reason: outcome.reason, detail: ack.message }, 'report rejected');
        this.#o.runner.onRejected(ack, report);
      }
    }
  }

  #onEnd(stream: Stream, status: grpc.StatusObject): void {
    if (stream.ended) return;
    stream.ended = true;
    for (const w of stream.endWaiters.splice(0)) w();
    if (stream !== this.#stream) return;
    this.#stream = null;
    this.#stopHeartbeat();
    if (this.#closing) return;
    if (status.code === GrpcStatus.OK) return this.#scheduleReconnect(this.#o.backoff.next(), null);
    const error = fromGrpcError(status);
    if (stream.aborted && error.grpcCode === GrpcStatus.CANCELLED) return this.#scheduleReconnect(this.#o.backoff.next(), error);
    if (error.code === 'SESSION_EXPIRED' && this.#handle) {
      this.#o.logger.warn({}, 'session expired; starting a new session');
      this.#handle = '';
      return this.#scheduleReconnect(0, error);
    }
    if (FATAL_STATUSES.has(error.grpcCode) || FATAL_REASONS.has(error.code)) {
      this.#o.logger.error({ code: error.code, status: error.grpcCode, message: error.message }, 'the server refused the worker session');
      this.#closing = true;
      this.#o.events.fatal(error);
      return;
    }
    this.#scheduleReconnect(this.#o.backoff.next(), error);
  }

  #scheduleReconnect(delayMs: number, error: TaskerError | null): void {
    const info: ReconnectInfo = { attempt: this.#o.backoff.attempt, delayMs, error };
    this.#o.logger.info({ attempt: info.attempt, delayMs: Math.round(delayMs), code: error?.code ?? 'OK' }, 'session stream ended; reconnecting');
    this.#o.events.reconnecting(info);
    this.#reconnect = setTimeout(() => this.#connect(), delayMs);
  }

  #startHeartbeat(stream: Stream, intervalMs: number): void {
    this.#stopHeartbeat();
    this.#heartbeat = setInterval(() => this.#write(stream, { kind: { $case: 'heartbeat', value: { sentAt: new Date() } } }), intervalMs);
    this.#heartbeat.unref();
  }

  #stopHeartbeat(): void {
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
  }

  /** Coalesces everything produced within one event-loop turn into one flush. */
  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    setImmediate(() => this.#flush());
  }

  #flush(): void {
    this.#flushScheduled = false;
    const stream = this.#stream;
    if (!stream?.welcomed || stream.ended) return;
    for (const batch of this.#o.reports.take(this.#o.runner.maxReportBytes)) this.#write(stream, { kind: { $case: 'reports', value: batch } });
  }

  /** Asks the server for no new steps, now and on every later (re)connection. */
  drain(reason: string, graceMs: number): void {
    this.#drain = { reason, graceMs: Math.max(0, Math.min(Math.round(graceMs), 0xffffffff)) };
    const stream = this.#stream;
    if (stream?.welcomed) this.#write(stream, { kind: { $case: 'drain', value: this.#drain } });
  }

  /** Sets the session's credit (sent at once when connected, else in the next Hello). */
  setCredit(slots: number): void {
    this.#credit = slots;
    const stream = this.#stream;
    if (stream?.welcomed && !this.#drain) this.#write(stream, { kind: { $case: 'credit', value: { slots } } });
  }

  /** Drops the current stream as a network fault would; the session then resumes. */
  interrupt(): void {
    const stream = this.#stream;
    if (!stream || stream.ended) return;
    this.#o.logger.info({}, 'dropping the session stream on request');
    stream.aborted = true;
    stream.call.cancel();
  }

  /** Stops reconnecting and ends the stream gracefully (half-close), cancelling it after `timeoutMs`. */
  async close(timeoutMs: number): Promise<void> {
    this.#closing = true;
    if (this.#reconnect) clearTimeout(this.#reconnect);
    this.#reconnect = null;
    this.#stopHeartbeat();
    const stream = this.#stream;
    if (!stream || stream.ended) return;
    this.#flush();
    const ended = new Promise<void>((resolve) => stream.endWaiters.push(resolve));
    stream.call.end();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(true), timeoutMs);
    });
    const late = await Promise.race([ended.then(() => false), timedOut]);
    clearTimeout(timer);
    if (late) stream.call.cancel();
  }
}
