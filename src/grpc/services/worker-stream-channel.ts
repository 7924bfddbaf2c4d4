/**
 * One worker stream's transport: the engine-facing {@link SessionChannel} (batches,
 * acks, cancels, drains, in domain terms, with write backpressure) and the reading
 * side the service's state machine pulls messages from.
 *
 * Reading and writing end separately: after the worker half-closes, acks for its
 * last reports can still be written; after a cancel or `end()`, nothing is.
 */
import type * as grpc from '@grpc/grpc-js';
import type { AppError } from '../../domain/errors.js';
import type { ClaimedBatch } from '../../engine/claims.js';
import type { ReportAck } from '../../engine/result-processor.js';
import type { SessionChannel } from '../../engine/worker-hub.js';
import type { ServerMessage, WorkerMessage } from '../../gen/tasker/v1/worker.js';
import type { LeasedStepRef } from '../../store/sessions.js';
import { acksMessage, batchMessage, cancelMessage, drainMessage } from '../mappers/worker.js';

/** Who ended the stream. */
export type ClosedBy = 'client' | 'cancelled' | 'server';

type Waiter = (value: WorkerMessage | 'wake' | null) => void;

/** See the file comment. */
export class StreamChannel implements SessionChannel {
  readonly #call: grpc.ServerDuplexStream<WorkerMessage, ServerMessage>;
  readonly #queue: WorkerMessage[] = [];
  #waiter: Waiter | null = null;
  #readEnded = false;
  #writeClosed = false;
  #closedBy: ClosedBy | null = null;
  #error: AppError | null = null;

  constructor(call: grpc.ServerDuplexStream<WorkerMessage, ServerMessage>) {
    this.#call = call;
    call.on('data', (message: WorkerMessage) => {
      if (this.#waiter) this.#settle(message);
      else this.#queue.push(message);
    });
    call.on('end', () => {
      this.#readEnded = true;
      this.#closedBy ??= 'client';
      this.#settle(null);
    });
    call.on('cancelled', () => this.markClosed('cancelled'));
    call.on('error', () => this.markClosed('cancelled'));
    call.on('close', () => this.markClosed('cancelled'));
  }

  /** False once nothing more can be written (cancelled, or ended by the server). */
  get open(): boolean {
    return !this.#writeClosed && !this.#call.cancelled && !this.#call.destroyed && !this.#call.writableEnded;
  }

  /** Who ended the stream, once ended. */
  get closedBy(): ClosedBy | null {
    return this.#closedBy;
  }

  /** The status the server ended the stream with, if any. */
  get error(): AppError | null {
    return this.#error;
  }

  /** The first message (then reading pauses until {@link resume}); null when the stream ended first. */
  async first(): Promise<WorkerMessage | null> {
    for (;;) {
      const message = await this.next();
      if (message === 'wake') {
        if (!this.open) return null;
        continue;
      }
      if (message) this.#call.pause();
      return message;
    }
  }

  /** Resumes reading after Hello was handled. */
  resume(): void {
    this.#call.resume();
  }

  /** The next message; null when reading ended; `wake` after {@link wake} or when `timeoutMs` passed. */
  next(timeoutMs?: number): Promise<WorkerMessage | 'wake' | null> {
    if (this.#writeClosed && this.#closedBy !== 'client') return Promise.resolve(null);
    const queued = this.#queue.shift();
    if (queued) return Promise.resolve(queued);
    if (this.#readEnded) return Promise.resolve(null);
    return new Promise((resolve) => {
      const timer = timeoutMs === undefined ? null : setTimeout(() => this.#settle('wake'), timeoutMs);
      this.#waiter = (value) => {
        if (timer) clearTimeout(timer);
        resolve(value);
      };
    });
  }

  /** Makes a pending {@link next} return `wake`. */
  wake(): void {
    this.#settle('wake');
  }

  /** Marks the stream ended from outside the server's control. */
  markClosed(by: ClosedBy): void {
    this.#writeClosed = true;
    this.#closedBy ??= by;
    this.#settle(null);
  }

  #settle(value: WorkerMessage | 'wake' | null): void {
    const waiter = this.#waiter;
    this.#waiter = null;
    waiter?.(value);
  }

  /** Writes one message; false when the transport's buffer is full (or the stream is closed). */
  write(message: ServerMessage): boolean {
    if (!this.open) return false;
    return this.#call.write(message);
  }

  sendBatch(batch: ClaimedBatch): boolean {
    return this.write(batchMessage(batch));
  }

  sendAcks(acks: readonly ReportAck[]): void {
    this.write(acksMessage(acks));
  }

  sendCancel(steps: readonly LeasedStepRef[], reason: string): void {
    this.write(cancelMessage(steps, reason));
  }

  sendDrain(reason: string, graceMs: number): void {
    this.write(drainMessage(reason, graceMs));
  }

  whenWritable(): Promise<void> {
    if (!this.open || !this.#call.writableNeedDrain) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.#call.off('drain', done);
        this.#call.off('close', done);
        this.#call.off('cancelled', done);
        resolve();
      };
      this.#call.on('drain', done);
      this.#call.on('close', done);
      this.#call.on('cancelled', done);
    });
  }

  /**
   * Ends the stream from the server: the service's `run` returns (OK) or throws
   * `error` (its status), and the handler wrapper ends the call.
   */
  end(error?: AppError): void {
    if (this.#writeClosed) return;
    this.#error = error ?? null;
    this.#writeClosed = true;
    this.#closedBy ??= 'server';
    this.#settle(null);
  }
}
