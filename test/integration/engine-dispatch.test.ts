import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { AppError } from '../../src/domain/errors.js';
import type { ClaimedBatch } from '../../src/engine/claims.js';
import { Dispatcher } from '../../src/engine/dispatcher.js';
import type { ReportAck } from '../../src/engine/result-processor.js';
import { Wakeups } from '../../src/engine/wakeups.js';
import type { SessionChannel } from '../../src/engine/worker-hub.js';
import { WorkerHub } from '../../src/engine/worker-hub.js';
import type { LeasedStepRef, SessionRecord } from '../../src/store/sessions.js';
import { readyHandlers } from '../../src/store/steps.js';
import { backends } from '../support/databases.js';
import type { Harness } from './engine-fixtures.js';
import { createHarness, handlerOf, tmpl } from './engine-fixtures.js';

/** The transport side of an attached session, kept in memory: what the dispatcher sent. */
class RecordingChannel implements SessionChannel {
  readonly batches: ClaimedBatch[] = [];
  open = true;
  sendBatch(batch: ClaimedBatch): boolean {
    this.batches.push(batch);
    return true;
  }
  sendAcks(_acks: readonly ReportAck[]): void {}
  sendCancel(_steps: readonly LeasedStepRef[], _reason: string): void {}
  sendDrain(_reason: string, _graceMs: number): void {}
  whenWritable(): Promise<void> {
    return Promise.resolve();
  }
  end(_error?: AppError): void {
    this.open = false;
  }
}

async function eventually(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`timed out waiting until ${what}`);
}

describe.each(backends)('dispatch on $name', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(backend);
  });
  afterAll(async () => {
    await h?.close();
  });

  test('readyHandlers names the handlers with a claimable step now, and only those', async () => {
    const ready = tmpl('ready_now', [['a']]);
    const later = tmpl('ready_later', [['a']]);
    await h.start(ready);
    await h.start(later);
    const [attempt] = await h.claim(handlerOf('ready_later'));
    expect((await h.fail(attempt!)).status).toBe('accepted');
    const db = h.t.database.db;
    const handlers = [handlerOf('ready_now'), handlerOf('ready_later'), handlerOf('ready_never')];
    expect(await readyHandlers(db, handlers, h.clock.now())).toEqual([handlerOf('ready_now')]);
    const afterBackoff = new Date(h.clock.now().getTime() + 60_000);
    expect((await readyHandlers(db, handlers, afterBackoff)).sort()).toEqual([handlerOf('ready_now'), handlerOf('ready_later')].sort());
  });

  test('the poll claims only for sessions serving a handler with ready steps; idle sessions are left alone', async () => {
    const busy = handlerOf('poll_busy');
    const idle = handlerOf('poll_idle');
    const task = await h.start(tmpl('poll_busy', [['a']]));
    const [first] = await h.claim(busy);
    expect((await h.fail(first!)).status).toBe('accepted');
    const retryAt = (await h.steps(task.id)).get('a')!.readyAt!;

    const claims: Array<{ sessionId: string; claimed: number }> = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void recordClaim(JSON.parse(line)) });
    const recordClaim = (entry: { msg?: string; sessionId?: string; claimed?: number }) => {
      if (entry.msg === 'claimed') claims.push({ sessionId: entry.sessionId as string, claimed: entry.claimed as number });
    };
    const { database } = h.t;
    const hub = new WorkerHub({ database, instanceId: 'test-instance', clock: h.clock, logger });
    const dispatcher = new Dispatcher({ db: database.db, hub, clock: h.clock, logger, leaseMs: 30_000, dispatchBatchSize: 16 });
    const wakeups = new Wakeups({ database, dispatcher, hub, logger, clock: h.clock, pollIntervalMs: 3_600_000, silenceMs: 3_600_000 });
    const attach = async (handler: string): Promise<{ id: string; channel: RecordingChannel }> => {
      const id = await h.newSession();
      const now = h.clock.now();
      const record: SessionRecord = {
        id,
        workerName: 'test-worker',
        language: 'node',
        sdkVersion: '0',
        handlers: [handler],
        namespaces: [],
        labels: {},
        maxInFlight: 8,
        instanceId: 'test-instance',
        state: 'active',
        connected: true,
        lastHeartbeatAt: now,
        expiresAt: new Date(now.getTime() + 3_600_000),
        createdAt: now,
        updatedAt: now,
      };
      const channel = new RecordingChannel();
      hub.attach(record, channel, [], new Error('replaced') as AppError);
      return { id, channel };
    };
    const worker = await attach(busy);
    const idlers = await Promise.all(Array.from({ length: 20 }, () => attach(idle)));

    dispatcher.start();
    await eventually(() => claims.length === 21 && dispatcher.activeClaims === 0, 'every session was served once on start');
    expect(claims.every((c) => c.claimed === 0)).toBe(true);

    claims.length = 0;
    await wakeups.tick();
    await eventually(() => dispatcher.activeClaims === 0, 'no claim runs');
    expect(claims).toEqual([]);

    h.clock.set(retryAt);
    await wakeups.tick();
    await eventually(() => claims.length === 1 && dispatcher.activeClaims === 0, 'the retry was claimed');
    expect(claims).toEqual([{ sessionId: worker.id, claimed: 1 }]);
    expect(worker.channel.batches.flatMap((b) => b.assignments.map((a) => [a.stepName, a.attempt]))).toEqual([['a', 2]]);
    for (const other of idlers) expect(other.channel.batches).toEqual([]);
    await dispatcher.stop();
    await wakeups.stop();
  });
  test('a commit that opens credit claims for the sessions it starved, not for sessions with credit to spare', async () => {
    const handler = handlerOf('credit_opened');
    await h.start(tmpl('credit_opened', [['a'], ['b']]));
    const claims: Array<{ sessionId: string; claimed: number }> = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void recordClaim(JSON.parse(line)) });
    const recordClaim = (entry: { msg?: string; sessionId?: string; claimed?: number }) => {
      if (entry.msg === 'claimed') claims.push({ sessionId: entry.sessionId as string, claimed: entry.claimed as number });
    };
    const { database } = h.t;
    const hub = new WorkerHub({ database, instanceId: 'test-instance', clock: h.clock, logger });
    const dispatcher = new Dispatcher({ db: database.db, hub, clock: h.clock, logger, leaseMs: 30_000, dispatchBatchSize: 16 });
    const attach = async (handlers: string[], maxInFlight: number): Promise<RecordingChannel> => {
      const id = await h.newSession();
      const now = h.clock.now();
      const channel = new RecordingChannel();
      hub.attach(
        {
          id,
          workerName: 'test-worker',
          language: 'node',
          sdkVersion: '0',
          handlers,
          namespaces: [],
          labels: {},
          maxInFlight,
          instanceId: 'test-instance',
          state: 'active',
          connected: true,
          lastHeartbeatAt: now,
          expiresAt: new Date(now.getTime() + 3_600_000),
          createdAt: now,
          updatedAt: now,
        },
        channel,
        [],
        new Error('replaced') as AppError,
      );
      return channel;
    };
    const narrow = await attach([handler], 1);
    const spare = await attach([handlerOf('credit_spare')], 8);
    dispatcher.start();
    await eventually(() => claims.length === 2 && dispatcher.activeClaims === 0, 'both sessions were served on start');
    const [held] = narrow.batches.flatMap((b) => b.assignments);
    expect(held).toBeDefined();
    const sessions = [...hub.sessions()];
    const narrowSession = sessions.find((s) => s.handlers.has(handler))!;
    const spareSession = sessions.find((s) => !s.handlers.has(handler))!;
    expect(narrowSession.release(held!.stepId, held!.attempt)).toBe(true);

    claims.length = 0;
    dispatcher.dispatchCommitted({ opened: [narrowSession, spareSession], ready: [], changed: true, completed: [] });
    await eventually(() => claims.length === 1 && dispatcher.activeClaims === 0, 'the starved session claimed');
    expect(claims).toEqual([{ sessionId: narrowSession.id, claimed: 1 }]);
    expect(spare.batches).toEqual([]);
    await dispatcher.stop();
  });
});
