/**
 * Helpers for the application API e2e tests: real grpc-js clients from src/gen with a
 * bearer token, calls as promises, failures with their status, reason and details from
 * the trailers, server streams collected into arrays, and a stand-in worker that
 * drives steps through the engine directly (claims and outcomes), so these tests do
 * not depend on the worker protocol.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import pino from 'pino';
import { loadConfig } from '../../src/config/load.js';
import type { ConfigOverrides } from '../../src/config/load.js';
import type { Config } from '../../src/config/schema.js';
import { newId } from '../../src/domain/ids.js';
import type { StepAssignment } from '../../src/engine/claims.js';
import { claimSteps } from '../../src/engine/claims.js';
import type { OutcomeAck, OutcomeReport } from '../../src/engine/outcomes.js';
import { applyOutcomes } from '../../src/engine/outcomes.js';
import { AdminServiceClient } from '../../src/gen/tasker/v1/admin.js';
import { TaskServiceClient } from '../../src/gen/tasker/v1/task.js';
import { Backoff, IdentityStrategy, TemplateServiceClient } from '../../src/gen/tasker/v1/template.js';
import type { TaskTemplate } from '../../src/gen/tasker/v1/template.js';
import { ERROR_CODE_KEY, ERROR_DETAILS_KEY } from '../../src/grpc/errors.js';
import type { DB } from '../../src/store/schema.js';

/** The test tokens of config/tasker.test.yaml. */
export const TOKENS = { worker: 'test-worker-token', client: 'test-client-token', admin: 'test-admin-token' } as const;

export const silent = pino({ level: 'silent' });

/** A test configuration on 127.0.0.1:0 without template files unless asked. */
export function apiConfig(url: string | null, overrides: ConfigOverrides = {}): Config {
  return loadConfig({
    env: { TASKER_ENV: 'test' },
    overrides: {
      server: { host: '127.0.0.1', port: 0, shutdown_grace_ms: 500 },
      database: { url, pool_size: 6 },
      engine: { poll_interval_ms: 200 },
      templates: { register_on_start: false },
      ...overrides,
    },
  });
}

/** Call metadata with `authorization: Bearer <token>`; null sends none. */
export function auth(token: string | null): grpc.Metadata {
  const metadata = new grpc.Metadata();
  if (token !== null) metadata.set('authorization', `Bearer ${token}`);
  return metadata;
}

/** The three application clients for one address. */
export function clients(address: string) {
  const credentials = grpc.credentials.createInsecure();
  const templates = new TemplateServiceClient(address, credentials);
  const tasks = new TaskServiceClient(address, credentials);
  const admin = new AdminServiceClient(address, credentials);
  return { templates, tasks, admin, close: () => [templates, tasks, admin].forEach((c) => c.close()) };
}

/** The (request, metadata, options, callback) overload every generated unary method has (the one TypeScript infers from). */
type UnaryMethod<Req, Res> = (
  req: Req,
  md: grpc.Metadata,
  options: Partial<grpc.CallOptions>,
  cb: (err: grpc.ServiceError | null, res: Res) => void,
) => unknown;

/** Calls a unary method bound to its client. */
export function unary<Req, Res>(method: UnaryMethod<Req, Res>, req: Req, token: string | null = TOKENS.client): Promise<Res> {
  return new Promise<Res>((resolve, reject) => method(req, auth(token), {}, (err, res) => (err ? reject(err) : resolve(res))));
}

/** A refused call as the tests inspect it. */
export interface Refusal {
  readonly code: grpc.status;
  readonly reason: string | null;
  readonly details: Record<string, unknown>;
  readonly message: string;
}

/** The status, reason and details of a failed call (throws if it succeeded). */
export async function refusal(promise: Promise<unknown>): Promise<Refusal> {
  try {
    await promise;
  } catch (err) {
    return refusalOf(err as grpc.ServiceError);
  }
  throw new Error('expected the call to fail');
}

/** Status, reason and JSON details from a ServiceError's trailers. */
export function refusalOf(err: grpc.ServiceError): Refusal {
  const reason = err.metadata?.get(ERROR_CODE_KEY)[0];
  const raw = err.metadata?.get(ERROR_DETAILS_KEY)[0];
  return {
    code: err.code,
    reason: typeof reason === 'string' ? reason : null,
    details: raw ? (JSON.parse(raw.toString()) as Record<string, unknown>) : {},
    message: err.details,
  };
}

/** A server stream being collected. */
export interface Collected<T> {
  readonly items: T[];
  /** Resolves with the final status (OK or the error) once the stream ends. */
  readonly ended: Promise<{ code: grpc.status; error: Refusal | null }>;
  /** Resolves once at least `n` items arrived. */
  atLeast(n: number, timeoutMs?: number): Promise<T[]>;
  cancel(): void;
}

/** Collects a server stream's messages and its end. */
export function collect<T>(stream: grpc.ClientReadableStream<T>): Collected<T> {
  const items: T[] = [];
  const waiters: Array<() => void> = [];
  let done = false;
  const ended = new Promise<{ code: grpc.status; error: Refusal | null }>((resolve) => {
    stream.on('data', (item: T) => {
      items.push(item);
      waiters.splice(0).forEach((w) => w());
    });
    stream.on('error', (err: grpc.ServiceError) => {
      done = true;
      waiters.splice(0).forEach((w) => w());
      resolve({ code: err.code, error: refusalOf(err) });
    });
    stream.on('status', (s: grpc.StatusObject) => {
      if (s.code !== grpc.status.OK) return;
      done = true;
      waiters.splice(0).forEach((w) => w());
      resolve({ code: s.code, error: null });
    });
  });
  return {
    items,
    ended,
    async atLeast(n, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (items.length < n) {
        if (done) throw new Error(`stream ended after ${items.length} of ${n} items`);
        if (Date.now() > deadline) throw new Error(`timed out with ${items.length} of ${n} items`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
      return items.slice(0, n);
    },
    cancel: () => stream.cancel(),
  };
}

/**
 * A worker stand-in: a session row and the engine's own claim and outcome functions,
 * run against the server's database like another instance would.
 */
export class EngineDriver {
  readonly #db: Kysely<DB>;
  #sessionId: string | null = null;
  #reports = 0;

  constructor(db: Kysely<DB>) {
    this.#db = db;
  }

  async #session(): Promise<string> {
    if (this.#sessionId) return this.#sessionId;
    const id = newId();
    const now = new Date();
    const hash = createHash('sha256').update(randomBytes(16)).digest('hex');
    await sql`
      insert into worker_sessions (id, handle_hash, worker_name, last_heartbeat_at, expires_at, created_at, updated_at)
      values (${id}::uuid, ${hash}, 'engine-driver', ${now}, ${new Date(now.getTime() + 3_600_000)}, ${now}, ${now})`.execute(this.#db);
    this.#sessionId = id;
    return id;
  }

  /** Report ids are unique per driver, so a test may report on the same attempt more than once. */
  #reportId(): string {
    this.#reports += 1;
    return `driver-${this.#reports}`;
  }

  /** Claims ready steps of `handler`. */
  async claim(handler: string, limit = 100): Promise<StepAssignment[]> {
    const batch = await claimSteps(this.#db, { sessionId: await this.#session(), handlers: [handler], limit, leaseMs: 60_000, now: new Date() });
    return [...batch.assignments];
  }

  /** Applies reports as the session's worker. */
  async report(reports: OutcomeReport[]): Promise<OutcomeAck[]> {
    return applyOutcomes(this.#db, await this.#session(), reports, new Date(), { random: () => 0.5 });
  }

  started(a: StepAssignment): Promise<OutcomeAck[]> {
    return this.report([{ reportId: this.#reportId(), stepId: a.stepId, attempt: a.attempt, kind: 'started' }]);
  }

  progress(a: StepAssignment, seq: number, payload: unknown): Promise<OutcomeAck[]> {
    return this.report([{ reportId: this.#reportId(), stepId: a.stepId, attempt: a.attempt, kind: 'progress', seq, payloadJson: JSON.stringify(payload) }]);
  }

  completed(a: StepAssignment, result: unknown): Promise<OutcomeAck[]> {
    return this.report([{ reportId: this.#reportId(), stepId: a.stepId, attempt: a.attempt, kind: 'completed', resultJson: JSON.stringify(result) }]);
  }

  failed(a: StepAssignment, retryable: boolean): Promise<OutcomeAck[]> {
    return this.report([
      {
        reportId: this.#reportId(),
        stepId: a.stepId,
        attempt: a.attempt,
        kind: 'failed',
        error: { errorClass: 'Boom', message: 'it broke', retryable },
      },
    ]);
  }
}

/** Polls `probe` until `accept` holds (the engine is asynchronous by nature). */
export async function eventually<T>(probe: () => Promise<T>, accept: (v: T) => boolean, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last value ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A proto template `ns/name@version` whose steps all run `<name>.work`; steps as [name, parents]. */
export function protoTemplate(
  name: string,
  steps: Array<[string, string[]?]>,
  extra: Partial<TaskTemplate> = {},
): TaskTemplate {
  return {
    namespace: 'e2e',
    name,
    version: '1.0.0',
    description: `e2e template ${name}`,
    contextSchema: undefined,
    identityStrategy: IdentityStrategy.IDENTITY_STRATEGY_ALWAYS_UNIQUE,
    steps: steps.map(([step, dependsOn = []]) => ({
      name: step,
      handler: `${name}.work`,
      dependsOn,
      handlerConfig: { step },
      retry: { maxAttempts: 0, backoff: Backoff.BACKOFF_UNSPECIFIED, baseMs: 0, jitter: 0 },
      timeoutMs: 0,
    })),
    environments: {},
    createdAt: undefined,
    bodyHash: '',
    ...extra,
  };
}
