/**
 * Worker sessions on both backends: creating, resuming and expiring them, the
 * handle stored only as a hash, heartbeats extending the session and every lease it
 * holds, ownership moving between instances, and closing releasing leases.
 */
import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ManualClock } from '../../src/domain/clock.js';
import { FailedPreconditionError } from '../../src/domain/errors.js';
import { DEFAULT_RETRY_POLICY } from '../../src/domain/retry-policy.js';
import type { TaskTemplate } from '../../src/domain/template.js';
import { claimSteps } from '../../src/engine/claims.js';
import { Reaper } from '../../src/engine/reaper.js';
import type { OpenSessionRequest } from '../../src/engine/session-manager.js';
import { hashSessionHandle, SessionManager } from '../../src/engine/session-manager.js';
import { TaskManager } from '../../src/engine/task-manager.js';
import { TemplateRegistry } from '../../src/engine/template-registry.js';
import { completeBatches, findBatch, markBatchesExecuting } from '../../src/store/batches.js';
import { findSession } from '../../src/store/sessions.js';
import { backends } from '../support/databases.js';
import type { TestDatabase } from '../support/databases.js';

const logger = pino({ level: 'silent' });
const LEASE_MS = 30_000;
const TTL_MS = 300_000;

function template(name: string, steps: number): TaskTemplate {
  return {
    namespace: 'sessions',
    name,
    version: '1.0.0',
    description: '',
    contextSchema: null,
    identityStrategy: 'always_unique',
    steps: Array.from({ length: steps }, (_, i) => ({
      name: `s${i}`,
      handler: `${name}.work`,
      dependsOn: [],
      handlerConfig: {},
      retry: DEFAULT_RETRY_POLICY,
      timeoutMs: null,
    })),
    environments: {},
  };
}

function hello(handlers: string[], extra: Partial<OpenSessionRequest> = {}): OpenSessionRequest {
  return {
    workerName: 'worker-1',
    language: 'node',
    sdkVersion: '0.1.0',
    handlers,
    namespaces: [],
    labels: { host: 'test' },
    maxInFlight: 10,
    resumeHandle: '',
    templates: [],
    ...extra,
  };
}

describe.each(backends)('worker sessions on $name', ({ create }) => {
  let t: TestDatabase;
  let clock: ManualClock;
  let registry: TemplateRegistry;
  let tasks: TaskManager;

  const manager = (instanceId: string) =>
    new SessionManager({
      db: t.database.db,
      clock,
      instanceId,
      templates: registry,
      logger,
      settings: { heartbeatIntervalMs: 5_000, leaseMs: LEASE_MS, sessionTtlMs: TTL_MS, maxInFlight: 100, maxReportBytes: 1 << 20 },
    });

  /** A task of `name` with `steps` ready steps, and `claim` of them leased to `sessionId`. */
  async function leasedSteps(name: string, steps: number, sessionId: string, claim: number) {
    await registry.register(template(name, steps));
    await tasks.createTask({ template: { namespace: 'sessions', name } });
    return claimSteps(t.database.db, { sessionId, handlers: [`${name}.work`], limit: claim, leaseMs: LEASE_MS, now: clock.now() });
  }

  async function leaseExpiries(stepIds: readonly string[]): Promise<number[]> {
    const { rows } = await sql<{ at: Date }>`
      select lease_expires_at as at from workflow_steps where id = any(${[...stepIds]}::uuid[]) order by id`.execute(t.database.db);
    return rows.map((r) => r.at.getTime());
  }

  beforeAll(async () => {
    t = await create();
    clock = new ManualClock();
    registry = new TemplateRegistry({ db: t.database.db, clock, logger });
    tasks = new TaskManager({ db: t.database.db, templates: registry, clock, logger });
  });
  afterAll(async () => {
    await t?.close();
  });

  test('a new session stores the worker profile and only the hash of its handle', async () => {
    const opened = await manager('instance-a').open(hello(['a.work', 'a.work', 'b.work'], { maxInFlight: 500 }));
    expect(opened.resumed).toBe(false);
    expect(opened.inFlight).toEqual([]);
    expect(Buffer.from(opened.handle, 'base64url')).toHaveLength(32);
    expect(opened.expiresAt.getTime()).toBe(clock.now().getTime() + TTL_MS);
    const session = await findSession(t.database.db, opened.session.id);
    expect(session).toMatchObject({
      workerName: 'worker-1',
      language: 'node',
      sdkVersion: '0.1.0',
      handlers: ['a.work', 'b.work'],
      labels: { host: 'test' },
      maxInFlight: 100, // capped to workers.max_in_flight
      instanceId: 'instance-a',
      state: 'active',
      connected: true,
    });
    const { rows } = await sql<{ row: string }>`
      select row_to_json(w)::text as row from worker_sessions w where id = ${opened.session.id}::uuid`.execute(t.database.db);
    expect(rows[0]?.row).not.toContain(opened.handle);
    expect(rows[0]?.row).toContain(createHash('sha256').update(opened.handle).digest('hex'));
    expect(hashSessionHandle(opened.handle)).toMatch(/^[0-9a-f]{64}$/);
  });

  test('resuming with the handle re-attaches the session with the steps still leased to it', async () => {
    const a = manager('instance-a');
    const opened = await a.open(hello(['resume.work']));
    const claimed = await leasedSteps('resume', 3, opened.session.id, 2);
    expect(claimed.assignments).toHaveLength(2);
    expect(await a.detach(opened.session.id)).toBe(true);
    expect(await findSession(t.database.db, opened.session.id)).toMatchObject({ connected: false, instanceId: null });

    clock.advance(10_000);
    const resumed = await manager('instance-b').open(hello(['resume.work'], { resumeHandle: opened.handle, maxInFlight: 7 }));
    expect(resumed.resumed).toBe(true);
    expect(resumed.session.id).toBe(opened.session.id);
    expect(resumed.handle).toBe(opened.handle);
    expect(resumed.previousInstanceId).toBeNull();
    expect(resumed.session).toMatchObject({ instanceId: 'instance-b', connected: true, maxInFlight: 7 });
    const expected = claimed.assignments.map((s) => ({ stepId: s.stepId, attempt: 1 })).sort((x, y) => x.stepId.localeCompare(y.stepId));
    expect(resumed.inFlight).toEqual(expected);
    // Resuming counts as a heartbeat: the leases run from now.
    expect(await leaseExpiries(expected.map((s) => s.stepId))).toEqual([clock.now().getTime() + LEASE_MS, clock.now().getTime() + LEASE_MS]);
  });

  test('an unknown, expired or closed handle is refused with SESSION_EXPIRED', async () => {
    const a = manager('instance-a');
    const refused = (handle: string) => a.open(hello(['x.work'], { resumeHandle: handle }));
    await expect(refused('no-such-handle')).rejects.toMatchObject({ code: 'SESSION_EXPIRED' });
    await expect(refused('no-such-handle')).rejects.toBeInstanceOf(FailedPreconditionError);

    const expiring = await a.open(hello(['x.work']));
    clock.advance(TTL_MS + 1);
    await expect(refused(expiring.handle)).rejects.toMatchObject({ code: 'SESSION_EXPIRED' });

    const closing = await a.open(hello(['x.work']));
    expect(await a.close(closing.session.id)).toBe(true);
    expect(await findSession(t.database.db, closing.session.id)).toMatchObject({ state: 'closed', connected: false });
    await expect(refused(closing.handle)).rejects.toMatchObject({ code: 'SESSION_EXPIRED' });
  });

  test('a heartbeat extends the session and every lease it holds, and reports them', async () => {
    const a = manager('instance-a');
    const opened = await a.open(hello(['beat.work']));
    const claimed = await leasedSteps('beat', 4, opened.session.id, 3);
    const ids = claimed.assignments.map((s) => s.stepId).sort();
    clock.advance(20_000);
    const beat = await a.heartbeat(opened.session.id);
    expect(beat.owned).toBe(true);
    expect(beat.leased.map((l) => l.stepId)).toEqual(ids);
    const now = clock.now().getTime();
    expect(await leaseExpiries(ids)).toEqual(ids.map(() => now + LEASE_MS));
    const session = await findSession(t.database.db, opened.session.id);
    expect(session?.lastHeartbeatAt.getTime()).toBe(now);
    expect(session?.expiresAt.getTime()).toBe(now + TTL_MS);

    // A lease that already ran out is the reaper's, not renewed.
    clock.advance(LEASE_MS + 1);
    const late = await a.heartbeat(opened.session.id);
    expect(late).toEqual({ owned: true, leased: [] });
    expect(await leaseExpiries(ids)).toEqual(ids.map(() => now + LEASE_MS));
  });

  test('a session resumed on another instance is lost to the first one, which can no longer write it', async () => {
    const a = manager('instance-a');
    const b = manager('instance-b');
    const opened = await a.open(hello(['move.work']));
    const resumed = await b.open(hello(['move.work'], { resumeHandle: opened.handle }));
    expect(resumed.previousInstanceId).toBe('instance-a');
    expect(await a.heartbeat(opened.session.id)).toEqual({ owned: false, leased: [] });
    expect(await a.lossOf(opened.session.id)).toBe('resumed_elsewhere');
    expect(await a.detach(opened.session.id)).toBe(false);
    expect(await a.setCredit(opened.session.id, 3)).toBe(false);
    expect(await findSession(t.database.db, opened.session.id)).toMatchObject({ instanceId: 'instance-b', connected: true });
    expect((await b.heartbeat(opened.session.id)).owned).toBe(true);
    expect(await b.drain(opened.session.id)).toBe(true);
    expect(await findSession(t.database.db, opened.session.id)).toMatchObject({ state: 'draining' });
    clock.advance(TTL_MS + 1);
    expect(await b.lossOf(opened.session.id)).toBe('expired');
  });

  test('a session whose instance went silent is marked disconnected by the reaper, and can still be resumed', async () => {
    const a = manager('instance-a');
    const live = manager('instance-b');
    const orphan = await a.open(hello(['silent.work']));
    const beating = await live.open(hello(['silent.work']));
    const reaper = new Reaper({ db: t.database.db, clock, silenceMs: 2 * LEASE_MS, logger });
    clock.advance(LEASE_MS);
    await live.heartbeat(beating.session.id);
    expect((await reaper.tick()).detachedSessions).toEqual([]);
    clock.advance(LEASE_MS + 1);
    await live.heartbeat(beating.session.id);
    const tick = await reaper.tick();
    expect(tick.detachedSessions).toEqual([orphan.session.id]);
    expect(tick.expiredSessions).toEqual([]);
    expect(await findSession(t.database.db, orphan.session.id)).toMatchObject({ state: 'active', connected: false, instanceId: null });
    expect(await findSession(t.database.db, beating.session.id)).toMatchObject({ connected: true, instanceId: 'instance-b' });
    const resumed = await live.open(hello(['silent.work'], { resumeHandle: orphan.handle }));
    expect(resumed.session.id).toBe(orphan.session.id);
    expect(resumed.previousInstanceId).toBeNull();
  });

  test('closing a session makes the leases it still holds due at once', async () => {
    const a = manager('instance-a');
    const opened = await a.open(hello(['close.work']));
    const claimed = await leasedSteps('close', 2, opened.session.id, 2);
    expect(await a.close(opened.session.id)).toBe(true);
    const now = clock.now().getTime();
    expect(await leaseExpiries(claimed.assignments.map((s) => s.stepId).sort())).toEqual([now, now]);
  });

  test('step batches move to executing on a start and to completed on BatchCompleted', async () => {
    const a = manager('instance-a');
    const opened = await a.open(hello(['batch.work']));
    const claimed = await leasedSteps('batch', 2, opened.session.id, 2);
    expect(await findBatch(t.database.db, claimed.batchId)).toMatchObject({ state: 'sent', stepCount: 2, sessionId: opened.session.id });
    expect(await markBatchesExecuting(t.database.db, [claimed.assignments[0]!.stepId], clock.now())).toBe(1);
    expect(await markBatchesExecuting(t.database.db, [claimed.assignments[1]!.stepId], clock.now())).toBe(0);
    expect((await findBatch(t.database.db, claimed.batchId))?.state).toBe('executing');
    const other = await a.open(hello(['batch.work']));
    const completion = [{ batchId: claimed.batchId, completed: 2, failed: 0 }];
    expect(await completeBatches(t.database.db, other.session.id, completion, clock.now())).toEqual([]);
    expect(await completeBatches(t.database.db, opened.session.id, completion, clock.now())).toEqual([claimed.batchId]);
    expect(await findBatch(t.database.db, claimed.batchId)).toMatchObject({ state: 'completed', completedAt: clock.now() });
  });
});
