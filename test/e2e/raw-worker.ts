/**
 * A minimal worker speaking WorkerService.Connect with the generated grpc-js client
 * (no SDK): it sends exactly what a test tells it to, heartbeats while its session is
 * open, and collects what the server sends — assignments, acks by report id,
 * cancels, and the final status.
 */
import * as grpc from '@grpc/grpc-js';
import type { StepRef } from '../../src/gen/tasker/v1/common.js';
import { WorkerServiceClient } from '../../src/gen/tasker/v1/worker.js';
import type {
  Cancel,
  Drain,
  Hello,
  ResultAck,
  ServerMessage,
  StepAssignment,
  StepReport,
  Welcome,
  WorkerMessage,
} from '../../src/gen/tasker/v1/worker.js';
import { ERROR_CODE_KEY } from '../../src/grpc/errors.js';

/** One assignment as received. */
export type Assignment = StepAssignment;

/** How a stream ended. */
export interface EndStatus {
  readonly code: grpc.status;
  readonly reason: string | null;
  readonly details: string;
}

const TOKEN = 'test-worker-token';

/** See the file comment. */
export class RawWorker {
  readonly #client: WorkerServiceClient;
  readonly #call: grpc.ClientDuplexStream<WorkerMessage, ServerMessage>;
  readonly #steps: Assignment[] = [];
  readonly #acks = new Map<number, ResultAck[]>();
  readonly #cancels: Cancel[] = [];
  readonly #drains: Drain[] = [];
  #welcome: Welcome | null = null;
  #status: EndStatus | null = null;
  #heartbeat: NodeJS.Timeout | null = null;
  #nextReportId = 1;
  #listeners: Array<() => void> = [];

  constructor(address: string) {
    this.#client = new WorkerServiceClient(address, grpc.credentials.createInsecure());
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${TOKEN}`);
    this.#call = this.#client.connect(metadata);
    this.#call.on('data', (m: ServerMessage) => this.#receive(m));
    this.#call.on('error', (err: grpc.ServiceError) => this.#ended(err.code, err.metadata, err.details));
    this.#call.on('status', (s: grpc.StatusObject) => this.#ended(s.code, s.metadata, s.details));
  }

  /** A Hello with defaults for what `fields` leaves out. */
  static hello(fields: Partial<Hello>): Hello {
    return {
      workerName: 'raw-worker',
      language: 'node',
      sdkVersion: 'test',
      handlers: [],
      namespaces: [],
      maxInFlight: 1,
      labels: {},
      resumeHandle: '',
      templates: [],
      ...fields,
    };
  }

  #receive(m: ServerMessage): void {
    const kind = m.kind;
    if (kind?.$case === 'welcome') this.#welcome = kind.value;
    else if (kind?.$case === 'batch') this.#steps.push(...kind.value.steps);
    else if (kind?.$case === 'acks') {
      for (const ack of kind.value.acks) this.#acks.set(ack.reportId, [...(this.#acks.get(ack.reportId) ?? []), ack]);
    } else if (kind?.$case === 'cancel') this.#cancels.push(kind.value);
    else if (kind?.$case === 'drain') this.#drains.push(kind.value);
    this.#notify();
  }

  #ended(code: grpc.status, metadata: grpc.Metadata | undefined, details: string): void {
    if (this.#status) return;
    const reason = metadata?.get(ERROR_CODE_KEY)[0];
    this.#status = { code, reason: typeof reason === 'string' ? reason : null, details };
    this.#stopHeartbeat();
    this.#notify();
  }

  #notify(): void {
    const listeners = this.#listeners;
    this.#listeners = [];
    for (const l of listeners) l();
  }

  /** Waits until `ready()` returns a value (re-checked on every message), or fails after `timeoutMs`. */
  async #until<T>(ready: () => T | undefined, what: string, timeoutMs = 15_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = ready();
      if (value !== undefined) return value;
      if (this.#status) throw new Error(`stream ended (${this.#status.code} ${this.#status.reason ?? ''}: ${this.#status.details}) while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#listeners.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  send(message: WorkerMessage): void {
    this.#call.write(message);
  }

  /** Sends Hello and returns the Welcome; heartbeats start. */
  async hello(fields: Partial<Hello>): Promise<Welcome> {
    this.send({ kind: { $case: 'hello', value: RawWorker.hello(fields) } });
    const welcome = await this.#until(() => this.#welcome ?? undefined, 'Welcome');
    this.#heartbeat = setInterval(() => {
      if (!this.#status) this.send({ kind: { $case: 'heartbeat', value: { sentAt: new Date() } } });
    }, welcome.heartbeatIntervalMs);
    return welcome;
  }

  /** Assignments received and not yet taken. */
  pendingSteps(): number {
    return this.#steps.length;
  }

  /** The next `n` assignments, waiting for them. */
  takeSteps(n: number): Promise<Assignment[]> {
    return this.#until(() => (this.#steps.length >= n ? this.#steps.splice(0, n) : undefined), `${n} step(s)`);
  }

  /** The next Cancel. */
  nextCancel(): Promise<Cancel> {
    return this.#until(() => this.#cancels.shift(), 'Cancel');
  }

  /** The next Drain from the server. */
  nextDrain(): Promise<Drain> {
    return this.#until(() => this.#drains.shift(), 'Drain');
  }

  /** Half-closes the stream (a worker done after draining); heartbeats stop. */
  end(): void {
    this.#stopHeartbeat();
    this.#call.end();
  }

  #report(a: StepRef, kind: StepReport['kind']): StepReport {
    return { reportId: this.#nextReportId++, stepId: a.stepId, attempt: a.attempt, kind };
  }

  started(a: StepRef): StepReport {
    return this.#report(a, { $case: 'started', value: { startedAt: new Date() } });
  }

  completed(a: StepRef, result: unknown): StepReport {
    return this.#report(a, { $case: 'completed', value: { resultJson: Buffer.from(JSON.stringify(result)) } });
  }

  /** A StepFailed report; `details` (a JSON value) goes in details_json, none when absent. */
  failed(a: StepRef, message: string, retryable = true, details?: unknown): StepReport {
    const detailsJson = details === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(details));
    return this.#report(a, {
      $case: 'failed',
      value: { error: { errorClass: 'TestError', message, backtrace: [], retryable, code: '', detailsJson } },
    });
  }

  /** Sends `reports` in one ReportBatch and returns their acks, in report order. */
  report(reports: StepReport[]): Promise<ResultAck[]> {
    this.send({ kind: { $case: 'reports', value: { reports, batches: [] } } });
    return this.#until(() => {
      const counts = new Map<number, number>();
      for (const r of reports) counts.set(r.reportId, (counts.get(r.reportId) ?? 0) + 1);
      for (const [id, n] of counts) if ((this.#acks.get(id)?.length ?? 0) < n) return undefined;
      return reports.map((r) => this.#acks.get(r.reportId)!.shift()!);
    }, `acks of reports ${reports.map((r) => r.reportId).join(', ')}`);
  }

  /** How the stream ended (waits for it). */
  status(): Promise<EndStatus> {
    return this.#until(() => this.#status ?? undefined, 'the end of the stream');
  }

  #stopHeartbeat(): void {
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.#heartbeat = null;
  }

  /** Drops the stream as a crashed worker would (no Drain, no half-close). */
  cancel(): void {
    this.#stopHeartbeat();
    this.#call.cancel();
  }

  /** Ends everything; safe to call twice. */
  close(): void {
    this.#stopHeartbeat();
    if (!this.#status) this.#call.cancel();
    this.#client.close();
  }
}
