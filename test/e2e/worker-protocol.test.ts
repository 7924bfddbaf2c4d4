/**
 * The worker protocol on the wire: a real Tasker (`startTasker`, PostgreSQL,
 * 127.0.0.1:0) driven by a raw grpc-js client built from src/gen — Hello/Welcome,
 * StepBatches within credit, reports acked only after commit (accepted, duplicate,
 * rejected with a reason), resume with the session handle, lease expiry and
 * re-dispatch, cancellation, payload limits, and two instances sharing one database.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { sql } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { RunningTasker } from '../../src/app.js';
import { startTasker } from '../../src/app.js';
import { loadConfig } from '../../src/config/load.js';
import type { ConfigOverrides } from '../../src/config/load.js';
import { systemClock } from '../../src/domain/clock.js';
import { DEFAULT_RETRY_POLICY } from '../../src/domain/retry-policy.js';
import type { TaskTemplate } from '../../src/domain/template.js';
import { Reaper } from '../../src/engine/reaper.js';
import { TaskManager } from '../../src/engine/task-manager.js';
import { TemplateRegistry } from '../../src/engine/template-registry.js';
import { WorkerHub } from '../../src/engine/worker-hub.js';
import { AckStatus, RejectReason } from '../../src/gen/tasker/v1/worker.js';
import type { Database } from '../../src/store/database.js';
import { createPostgresTestDatabase } from '../support/databases.js';
import type { TestDatabase } from '../support/databases.js';
import { RawWorker } from './raw-worker.js';
import type { Assignment } from './raw-worker.js';

const silent = pino({ level: 'silent' });
const LEASE_MS = 1_500;

function config(url: string, overrides: ConfigOverrides = {}) {
  return loadConfig({
    env: { TASKER_ENV: 'test' },
    overrides: {
      server: { host: '127.0.0.1', port: 0, shutdown_grace_ms: 1_000 },
      database: { url, pool_size: 6 },
      workers: { heartbeat_interval_ms: 300, lease_ms: LEASE_MS, session_ttl_ms: 60_000, max_report_bytes: 4096 },
      engine: { poll_interval_ms: 100, reaper_interval_ms: 100 },
      templates: { register_on_start: false },
      ...overrides,
    },
  });
}

/** A template `name` whose steps run handler `<name>.<step handler suffix>`; deps as [step, parents, handler suffix]. */
function template(name: string, steps: Array<[string, string[], string?]>): TaskTemplate {
  return {
    namespace: 'e2e',
    name,
    version: '1.0.0',
    description: '',
    contextSchema: null,
    identityStrategy: 'always_unique',
    steps: steps.map(([step, dependsOn, suffix]) => ({
      name: step,
      handler: `${name}.${suffix ?? 'work'}`,
      dependsOn,
      handlerConfig: { step },
      retry: { ...DEFAULT_RETRY_POLICY, maxAttempts: 3, baseMs: 0, jitter: 0 },
      timeoutMs: null,
    })),
    environments: {},
  };
}

/** Polls `probe` until it returns a value `accept`s (the protocol is asynchronous by nature). */
async function eventually<T>(probe: () => Promise<T>, accept: (v: T) => boolean, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (accept(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last value ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('WorkerService.Connect against PostgreSQL', () => {
  let target: TestDatabase;
  let tasker: RunningTasker;
  let db: Database['db'];
  let registry: TemplateRegistry;
  let tasks: TaskManager;
  let reaper: Reaper;
  const workers: RawWorker[] = [];

  const connect = (address = tasker.address): RawWorker => {
    const w = new RawWorker(address);
    workers.push(w);
    return w;
  };

  async function startTask(t: TaskTemplate, context: unknown = {}): Promise<string> {
    await registry.register(t);
    const { task } = await tasks.createTask({ template: { namespace: 'e2e', name: t.name }, context });
    return task.id;
  }

  const taskState = async (id: string) => (await tasks.getTask(id)).state;

  async function stepRow(stepId: string) {
    const { rows } = await sql<{ state: string; attempts: number; result: unknown; session_id: string | null }>`
      select state, attempts, result, session_id from workflow_steps where id = ${stepId}::uuid`.execute(db);
    return rows[0];
  }

  async function sessionRow(id: string) {
    const { rows } = await sql<{ state: string; connected: boolean; instance_id: string | null }>`
      select state, connected, instance_id from worker_sessions where id = ${id}::uuid`.execute(db);
    return rows[0];
  }

  async function transitions(stepId: string, event: string): Promise<number> {
    const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from workflow_step_transitions where step_id = ${stepId}::uuid and event = ${event}`.execute(db);
    return rows[0]?.n ?? 0;
  }

  beforeAll(async () => {
    target = await createPostgresTestDatabase();
    tasker = await startTasker(config(target.url!), silent);
    db = target.database.db;
    registry = new TemplateRegistry({ db, clock: systemClock, logger: silent });
    tasks = new TaskManager({ db, templates: registry, clock: systemClock, logger: silent });
    reaper = new Reaper({ db, clock: systemClock, logger: silent });
  });

  afterAll(async () => {
    for (const w of workers) w.close();
    await tasker?.stop();
    await target?.close();
  });

  test('Hello → Welcome; a step batch is run, acked after commit, its children dispatched, the task completes', async () => {
    const w = connect();
    const welcome = await w.hello({ handlers: ['flow.work'], maxInFlight: 10 });
    expect(welcome.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(Buffer.from(welcome.sessionHandle, 'base64url').length).toBeGreaterThanOrEqual(16);
    expect(welcome).toMatchObject({ resumed: false, inFlight: [], leaseMs: LEASE_MS, heartbeatIntervalMs: 300, maxReportBytes: 4096 });
    expect(welcome.serverInstance).toBe(tasker.config.server.instance_id);
    expect(welcome.sessionExpiresAt!.getTime()).toBeGreaterThan(Date.now());

    const taskId = await startTask(template('flow', [['a', []], ['b', ['a']], ['c', ['a']], ['d', ['b', 'c']]]), { order: 7 });
    const [a] = await w.takeSteps(1);
    expect(a).toMatchObject({ stepName: 'a', attempt: 1, taskId, handler: 'flow.work', maxAttempts: 3 });
    expect(a!.template).toEqual({ namespace: 'e2e', name: 'flow', version: '1.0.0' });
    expect(JSON.parse(a!.contextJson.toString())).toEqual({ order: 7 });
    expect(JSON.parse(a!.handlerConfigJson.toString())).toEqual({ step: 'a' });

    const acks = await w.report([w.started(a!), w.completed(a!, { value: 1 })]);
    expect(acks.map((k) => k.status)).toEqual([AckStatus.ACK_STATUS_ACCEPTED, AckStatus.ACK_STATUS_ACCEPTED]);
    expect(await stepRow(a!.stepId)).toMatchObject({ state: 'complete', result: { value: 1 } });

    const children = await w.takeSteps(2);
    expect(children.map((s) => s.stepName).sort()).toEqual(['b', 'c']);
    for (const child of children) expect(JSON.parse(child.ancestorResultsJson.toString())).toEqual({ a: { value: 1 } });
    await w.report(children.flatMap((s) => [w.started(s), w.completed(s, { from: s.stepName })]));
    const [d] = await w.takeSteps(1);
    expect(JSON.parse(d!.ancestorResultsJson.toString())).toEqual({ a: { value: 1 }, b: { from: 'b' }, c: { from: 'c' } });
    await w.report([w.completed(d!, null)]);
    expect(await eventually(() => taskState(taskId), (s) => s === 'complete', 'task complete')).toBe('complete');
  });

  test('a stream whose first message is not Hello ends with INVALID_ARGUMENT HELLO_REQUIRED', async () => {
    const w = connect();
    w.send({ kind: { $case: 'heartbeat', value: {} } });
    expect(await w.status()).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, reason: 'HELLO_REQUIRED' });
  });

  test('never more steps held than the credit: 10 ready steps, max_in_flight 2', async () => {
    const w = connect();
    const welcome = await w.hello({ handlers: ['credit.work'], maxInFlight: 2 });
    const taskId = await startTask(template('credit', Array.from({ length: 10 }, (_, i): [string, string[]] => [`s${i}`, []])));
    const heldInDb = async () => {
      const { rows } = await sql<{ n: number }>`
        select count(*)::int as n from workflow_steps
        where session_id = ${welcome.sessionId}::uuid and state in ('enqueued', 'in_progress')`.execute(db);
      return rows[0]?.n ?? 0;
    };
    let held = await w.takeSteps(2);
    let done = 0;
    while (done < 10) {
      // Several poll intervals pass with the credit used up: nothing more may arrive.
      await new Promise((r) => setTimeout(r, 250));
      expect(w.pendingSteps()).toBe(0);
      expect(await heldInDb()).toBeLessThanOrEqual(2);
      const [first, ...rest] = held;
      const acks = await w.report([w.completed(first!, { i: done })]);
      expect(acks[0]?.status).toBe(AckStatus.ACK_STATUS_ACCEPTED);
      done += 1;
      held = done <= 8 ? [...rest, ...(await w.takeSteps(1))] : rest;
      expect(held.length).toBeLessThanOrEqual(2);
    }
    expect(await eventually(() => taskState(taskId), (s) => s === 'complete', 'task complete')).toBe('complete');
  });

  test('stale attempts, duplicates and unknown steps are refused or acked without a second effect', async () => {
    const w = connect();
    await w.hello({ handlers: ['acks.work'], maxInFlight: 5 });
    await startTask(template('acks', [['one', []]]));
    const [step] = await w.takeSteps(1);
    const stale = await w.report([{ ...w.completed(step!, 'late'), attempt: 2 }]);
    expect(stale[0]).toMatchObject({ status: AckStatus.ACK_STATUS_REJECTED, reason: RejectReason.REJECT_REASON_STALE_ATTEMPT });
    expect(await stepRow(step!.stepId)).toMatchObject({ state: 'enqueued', result: null });

    const unknown = await w.report([{ ...w.completed(step!, 1), stepId: randomUUID() }, { ...w.completed(step!, 1), stepId: 'not-a-uuid' }]);
    expect(unknown.map((k) => k.reason)).toEqual([RejectReason.REJECT_REASON_UNKNOWN_STEP, RejectReason.REJECT_REASON_UNKNOWN_STEP]);

    const completed = w.completed(step!, { ok: true });
    expect((await w.report([completed]))[0]?.status).toBe(AckStatus.ACK_STATUS_ACCEPTED);
    const again = await w.report([completed, { ...w.completed(step!, { ok: 'different' }) }]);
    expect(again.map((k) => k.status)).toEqual([AckStatus.ACK_STATUS_DUPLICATE, AckStatus.ACK_STATUS_DUPLICATE]);
    expect(await stepRow(step!.stepId)).toMatchObject({ state: 'complete', result: { ok: true } });
    expect(await transitions(step!.stepId, 'complete')).toBe(1);
  });

  test('malformed and too large reports are refused alone, with no effect', async () => {
    const w = connect();
    await w.hello({ handlers: ['limits.work'], maxInFlight: 5 });
    await startTask(template('limits', [['big', []]]));
    const [step] = await w.takeSteps(1);
    const big = w.completed(step!, { blob: 'x'.repeat(5000) });
    const badJson = { ...w.completed(step!, null), kind: { $case: 'completed' as const, value: { resultJson: Buffer.from('{nope') } } };
    const nul = { ...w.completed(step!, null), kind: { $case: 'completed' as const, value: { resultJson: Buffer.from('"a\\u0000b"') } } };
    const acks = await w.report([big, badJson, nul, w.started(step!)]);
    expect(acks.map((k) => [k.status, k.reason])).toEqual([
      [AckStatus.ACK_STATUS_REJECTED, RejectReason.REJECT_REASON_PAYLOAD_TOO_LARGE],
      [AckStatus.ACK_STATUS_REJECTED, RejectReason.REJECT_REASON_INVALID_PAYLOAD],
      [AckStatus.ACK_STATUS_REJECTED, RejectReason.REJECT_REASON_INVALID_PAYLOAD],
      [AckStatus.ACK_STATUS_ACCEPTED, RejectReason.REJECT_REASON_UNSPECIFIED],
    ]);
    expect(await stepRow(step!.stepId)).toMatchObject({ state: 'in_progress', result: null });
  });

  test('an unknown session handle ends the stream with FAILED_PRECONDITION SESSION_EXPIRED', async () => {
    const w = connect();
    w.send({ kind: { $case: 'hello', value: RawWorker.hello({ handlers: ['x.work'], resumeHandle: 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }) } });
    expect(await w.status()).toMatchObject({ code: grpc.status.FAILED_PRECONDITION, reason: 'SESSION_EXPIRED' });
  });

  test('a worker that reconnects with its handle keeps its in-flight steps; a resent report is applied once', async () => {
    const first = connect();
    const welcome = await first.hello({ handlers: ['resume.work'], maxInFlight: 5 });
    const taskId = await startTask(template('resume', [['x', []], ['y', []]]));
    const [x, y] = await first.takeSteps(2);
    // The completion of x is sent and the stream dropped at once: whether it was committed is unknown to the worker.
    const lost = first.completed(x!, { x: true });
    first.send({ kind: { $case: 'reports', value: { reports: [lost], batches: [] } } });
    first.cancel();

    const second = connect();
    const resumed = await second.hello({ handlers: ['resume.work'], maxInFlight: 5, resumeHandle: welcome.sessionHandle });
    expect(resumed).toMatchObject({ resumed: true, sessionId: welcome.sessionId, sessionHandle: welcome.sessionHandle });
    expect(resumed.inFlight.map((r) => r.stepId)).toContain(y!.stepId);
    const resent = await second.report([lost]);
    expect([AckStatus.ACK_STATUS_ACCEPTED, AckStatus.ACK_STATUS_DUPLICATE]).toContain(resent[0]?.status);
    expect((await second.report([second.completed(y!, { y: true })]))[0]?.status).toBe(AckStatus.ACK_STATUS_ACCEPTED);
    expect(await eventually(() => taskState(taskId), (s) => s === 'complete', 'task complete')).toBe('complete');
    expect(await transitions(x!.stepId, 'complete')).toBe(1);
    expect(second.pendingSteps()).toBe(0);
  });

  test('a worker killed mid-step loses the lease; the step runs again elsewhere as attempt 2, applied once', async () => {
    const doomed = connect();
    await doomed.hello({ handlers: ['crash.work'], maxInFlight: 1 });
    const taskId = await startTask(template('crash', [['fragile', []]]));
    const [step] = await doomed.takeSteps(1);
    await doomed.report([doomed.started(step!)]);
    doomed.cancel();

    const survivor = connect();
    await survivor.hello({ handlers: ['crash.work'], maxInFlight: 1 });
    await eventually(() => reaper.tick(), () => survivor.pendingSteps() > 0, 'the step re-dispatched after lease expiry');
    const [again] = await survivor.takeSteps(1);
    expect(again).toMatchObject({ stepId: step!.stepId, attempt: 2 });
    const acks = await survivor.report([survivor.started(again!), survivor.completed(again!, 'second time')]);
    expect(acks.map((k) => k.status)).toEqual([AckStatus.ACK_STATUS_ACCEPTED, AckStatus.ACK_STATUS_ACCEPTED]);
    expect(await eventually(() => taskState(taskId), (s) => s === 'complete', 'task complete')).toBe('complete');
    expect(await stepRow(step!.stepId)).toMatchObject({ state: 'complete', attempts: 2, result: 'second time' });
    expect(await transitions(step!.stepId, 'complete')).toBe(1);
    expect(await transitions(step!.stepId, 'lease_expired')).toBe(1);
  });

  test('cancelling a task sends Cancel to the session running its step; later reports are refused', async () => {
    const w = connect();
    await w.hello({ handlers: ['cancel.work'], maxInFlight: 2 });
    const taskId = await startTask(template('cancel', [['slow', []], ['after', ['slow']]]));
    const [step] = await w.takeSteps(1);
    await w.report([w.started(step!)]);
    const { cancelledSteps } = await tasks.cancelTask(taskId, 'operator said stop');
    expect(cancelledSteps).toEqual([{ stepId: step!.stepId, attempt: 1, sessionId: expect.any(String) }]);
    // Published the way any instance does for sessions it does not hold (tasker_cancel).
    await new WorkerHub({ database: target.database, instanceId: 'test-publisher', clock: systemClock, logger: silent }).deliverCancel(
      cancelledSteps,
      'operator said stop',
    );
    const cancel = await w.nextCancel();
    expect(cancel).toEqual({ steps: [{ stepId: step!.stepId, attempt: 1 }], reason: 'operator said stop' });
    const late = await w.report([w.completed(step!, 'too late')]);
    expect(late[0]).toMatchObject({ status: AckStatus.ACK_STATUS_REJECTED, reason: RejectReason.REJECT_REASON_TASK_CANCELLED });
    expect(await taskState(taskId)).toBe('cancelled');
  });

  test('a worker Drain stops new assignments; closing the stream then ends the session', async () => {
    const w = connect();
    const welcome = await w.hello({ handlers: ['drain.work'], maxInFlight: 5 });
    const first = await startTask(template('drain', [['only', []]]));
    const [step] = await w.takeSteps(1);
    w.send({ kind: { $case: 'drain', value: { reason: 'SIGTERM', graceMs: 1000 } } });
    await eventually(() => sessionRow(welcome.sessionId), (r) => r?.state === 'draining', 'session draining');
    const second = await startTask(template('drain', [['only', []]]));
    expect((await w.report([w.completed(step!, 'finished')]))[0]?.status).toBe(AckStatus.ACK_STATUS_ACCEPTED);
    await new Promise((r) => setTimeout(r, 300));
    expect(w.pendingSteps()).toBe(0);
    w.end();
    expect((await w.status()).code).toBe(grpc.status.OK);
    expect(await eventually(() => sessionRow(welcome.sessionId), (r) => r?.state === 'closed', 'session closed')).toMatchObject({
      connected: false,
    });
    expect(await taskState(first)).toBe('complete');
    expect(await taskState(second)).toBe('pending');
  });

  test('a server that shuts down sends Drain, acks what its workers report within the grace, and ends the streams', async () => {
    const leaving = await startTasker(config(target.url!, { server: { host: '127.0.0.1', port: 0, instance_id: 'leaving' } }), silent);
    const w = connect(leaving.address);
    const welcome = await w.hello({ handlers: ['shutdown.work'], maxInFlight: 5 });
    const taskId = await startTask(template('shutdown', [['held', []], ['next', ['held']]]));
    const [step] = await w.takeSteps(1);
    const stopping = leaving.stop();
    const drain = await w.nextDrain();
    expect(drain.graceMs).toBeGreaterThan(0);
    const acks = await w.report([w.completed(step!, 'done before shutdown')]);
    expect(acks[0]?.status).toBe(AckStatus.ACK_STATUS_ACCEPTED);
    expect((await w.status()).code).toBe(grpc.status.OK);
    await stopping;
    expect(w.pendingSteps()).toBe(0);
    expect(await sessionRow(welcome.sessionId)).toMatchObject({ state: 'active', connected: false, instance_id: null });

    // The worker moves to another instance with its handle and carries on.
    const moved = connect();
    const resumed = await moved.hello({ handlers: ['shutdown.work'], maxInFlight: 5, resumeHandle: welcome.sessionHandle });
    expect(resumed).toMatchObject({ resumed: true, sessionId: welcome.sessionId, inFlight: [] });
    const [next] = await moved.takeSteps(1);
    expect(next?.stepName).toBe('next');
    await moved.report([moved.completed(next!, null)]);
    expect(await eventually(() => taskState(taskId), (s) => s === 'complete', 'task complete')).toBe('complete');
  });

  test('two instances on one database: a task flows across workers attached to each', async () => {
    const second = await startTasker(config(target.url!, { server: { host: '127.0.0.1', port: 0, instance_id: 'second-instance' } }), silent);
    try {
      const left = connect(tasker.address);
      const right = connect(second.address);
      expect((await left.hello({ handlers: ['relay.left'], maxInFlight: 4 })).serverInstance).toBe(tasker.config.server.instance_id);
      expect((await right.hello({ handlers: ['relay.right'], maxInFlight: 4 })).serverInstance).toBe('second-instance');
      const taskId = await startTask(template('relay', [['one', [], 'left'], ['two', ['one'], 'right'], ['three', ['two'], 'left']]));
      const run = async (w: RawWorker, name: string): Promise<Assignment> => {
        const [s] = await w.takeSteps(1);
        expect(s?.stepName).toBe(name);
        expect((await w.report([w.started(s!), w.completed(s!, name)])).map((k) => k.status)).toEqual([
          AckStatus.ACK_STATUS_ACCEPTED,
          AckStatus.ACK_STATUS_ACCEPTED,
        ]);
        return s!;
      };
      await run(left, 'one');
      const two = await run(right, 'two');
      expect(JSON.parse(two.ancestorResultsJson.toString())).toEqual({ one: 'one' });
      await run(left, 'three');
      expect(await eventually(() => taskState(taskId), (s) => s === 'complete', 'task complete')).toBe('complete');
    } finally {
      await second.stop();
    }
  });
});
