/**
 * The event bus on both backends: live fan-out in id order with filters, replay from a
 * cursor joining the live stream with no gap and no duplicate (while events keep
 * arriving), wake-ups by NOTIFY, by a poke and by the polling fallback, results
 * remembered from local commits, a slow subscriber ended
 * with RESOURCE_EXHAUSTED, OUT_OF_RANGE for a cursor whose events are gone, shutdown,
 * and — on PostgreSQL, where transactions run concurrently — ids committed out of order
 * and ids rolled back.
 */
import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import pino from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OutOfRangeError, ResourceExhaustedError, UnavailableError } from '../../src/domain/errors.js';
import type { LifecycleEvent } from '../../src/domain/events.js';
import { EventBus } from '../../src/engine/event-bus.js';
import type { EventBusOptions } from '../../src/engine/event-bus.js';
import type { EventSubscription } from '../../src/engine/event-subscription.js';
import type { Database } from '../../src/store/database.js';
import type { TestDatabase } from '../support/databases.js';
import { backends } from '../support/databases.js';

const silent = pino({ level: 'silent' });

interface NewEvent {
  readonly type?: string;
  readonly namespace?: string;
  readonly taskName?: string;
  readonly taskId?: string;
}

/** Appends events in one transaction and notifies like the engine does (unless `notify` is false); returns their ids. */
async function append(database: Database, events: readonly NewEvent[], notify = true): Promise<number[]> {
  return database.db.transaction().execute(async (trx) => {
    const ids: number[] = [];
    for (const e of events) {
      const { rows } = await sql<{ id: number | string }>`
        insert into tasker_events (event_type, namespace, task_name, task_id, payload, created_at)
        values (${e.type ?? 'task.created'}, ${e.namespace ?? 'ns'}, ${e.taskName ?? 'work'}, ${e.taskId ?? randomUUID()}::uuid,
                '{"to":"pending"}'::jsonb, now())
        returning id`.execute(trx);
      ids.push(Number(rows[0]!.id));
    }
    if (notify && ids.length > 0) await sql`select pg_notify('tasker_events', ${String(Math.max(...ids))})`.execute(trx);
    return ids;
  });
}

/** The next `n` events of a subscription. */
async function take(sub: EventSubscription, n: number): Promise<LifecycleEvent[]> {
  const out: LifecycleEvent[] = [];
  while (out.length < n) {
    const next = await sub.next();
    if (next.done) throw new Error(`subscription ended after ${out.length} of ${n} events`);
    out.push(next.value);
  }
  return out;
}

/** Whether `promise` has settled once pending reads and callbacks ran. */
async function settledAfter(bus: EventBus, promise: Promise<unknown>): Promise<boolean> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  await bus.refresh();
  await bus.refresh();
  await new Promise((r) => setImmediate(r));
  return settled;
}

describe.each(backends)('EventBus on $name', (backend) => {
  let t: TestDatabase;
  const buses: EventBus[] = [];

  async function startBus(options: Partial<EventBusOptions> = {}): Promise<EventBus> {
    const bus = new EventBus({ database: t.database, logger: silent, pollIntervalMs: 60_000, ...options });
    await bus.start();
    buses.push(bus);
    return bus;
  }

  beforeAll(async () => {
    t = await backend.create();
  });

  afterEach(async () => {
    for (const bus of buses.splice(0)) await bus.stop();
  });

  afterAll(async () => {
    await t?.close();
  });

  it('fans live events out in id order to each matching subscriber, woken by NOTIFY', async () => {
    const bus = await startBus();
    const taskId = randomUUID();
    const all = bus.subscribe({ namespace: 'fan' });
    const oneTask = bus.subscribe({ taskId });
    const completed = bus.subscribe({ namespace: 'fan', eventTypes: ['task.completed'] });
    await Promise.all([all.ready(), oneTask.ready(), completed.ready()]);

    const ids = await append(t.database, [
      { namespace: 'fan', taskId },
      { namespace: 'fan', type: 'task.completed' },
      { namespace: 'other', taskId },
      { namespace: 'fan', taskId, type: 'task.completed' },
    ]);
    expect((await take(all, 3)).map((e) => e.id)).toEqual([ids[0], ids[1], ids[3]]);
    expect((await take(oneTask, 3)).map((e) => e.id)).toEqual([ids[0], ids[2], ids[3]]);
    const done = await take(completed, 2);
    expect(done.map((e) => [e.id, e.kind, e.namespace])).toEqual([
      [ids[1], 'task.completed', 'fan'],
      [ids[3], 'task.completed', 'fan'],
    ]);
    expect(done[0]!.payload).toEqual({ to: 'pending' });
    for (const s of [all, oneTask, completed]) s.close();
    expect(bus.subscriberCount).toBe(0);
  });

  it('sends a live-only subscriber nothing from before it subscribed', async () => {
    const bus = await startBus();
    await append(t.database, [{ namespace: 'late' }, { namespace: 'late' }]);
    const sub = bus.subscribe({ namespace: 'late' });
    await sub.ready();
    const [after] = await append(t.database, [{ namespace: 'late' }]);
    expect((await take(sub, 1)).map((e) => e.id)).toEqual([after]);
    sub.close();
  });

  it('goes idle when the last subscriber leaves and starts again for the next one', async () => {
    const bus = await startBus();
    const first = bus.subscribe({ namespace: 'idle' });
    await first.ready();
    first.close();
    expect(bus.subscriberCount).toBe(0);
    const [whileIdle] = await append(t.database, [{ namespace: 'idle' }]);
    const again = bus.subscribe({ namespace: 'idle' });
    await again.ready();
    expect(bus.cursor).toBeGreaterThanOrEqual(whileIdle!);
    const [fresh] = await append(t.database, [{ namespace: 'idle' }]);
    expect((await take(again, 1)).map((e) => e.id)).toEqual([fresh]);
    again.close();
  });

  it('replays from a cursor and continues live with no gap and no duplicate while events keep coming', async () => {
    const bus = await startBus({ pageSize: 7 });
    const [start] = await append(t.database, [{ namespace: 'replay' }]);
    await append(t.database, Array.from({ length: 40 }, () => ({ namespace: 'replay' })));
    const sub = bus.subscribe({ namespace: 'replay' }, { afterCursor: start });

    // 40 to replay, 15 more committed while the subscriber replays and switches to live.
    const reader = take(sub, 55);
    for (let i = 0; i < 15; i++) await append(t.database, [{ namespace: 'replay' }, { namespace: 'noise' }]);
    const received = (await reader).map((e) => e.id);
    const { rows } = await sql<{ id: number | string }>`
      select id from tasker_events where namespace = 'replay' and id > ${start} order by id`.execute(t.database.db);
    expect(received).toEqual(rows.map((r) => Number(r.id)));
    sub.close();
  });

  it('reads on its polling fallback when no notification comes', async () => {
    const bus = await startBus({ pollIntervalMs: 50 });
    const sub = bus.subscribe({ namespace: 'silent' });
    await sub.ready();
    const ids = await append(t.database, [{ namespace: 'silent' }, { namespace: 'silent' }], false);
    expect((await take(sub, 2)).map((e) => e.id)).toEqual(ids);
    sub.close();
  });

  it('reads at once when poked after a commit of this instance, without its notification', async () => {
    const bus = await startBus();
    const sub = bus.subscribe({ namespace: 'poked' });
    await sub.ready();
    const ids = await append(t.database, [{ namespace: 'poked' }], false);
    bus.poke();
    expect((await take(sub, 1)).map((e) => e.id)).toEqual(ids);
    sub.close();
  });

  it('remembers results of completions committed here while subscribed, the most recent ones only', async () => {
    const bus = await startBus({ resultMemory: 2 });
    bus.rememberResults([{ stepId: 'idle', resultJson: '1' }]);
    const sub = bus.subscribe({ namespace: 'results' });
    await sub.ready();
    expect(bus.knownResult('idle')).toBeNull();
    bus.rememberResults([
      { stepId: 'a', resultJson: '{"n":1}' },
      { stepId: 'b', resultJson: 'null' },
    ]);
    bus.rememberResults([{ stepId: 'c', resultJson: '[1,"two"]' }]);
    expect(bus.knownResult('a')).toBeNull();
    expect(bus.knownResult('b')).toEqual({ value: null });
    expect(bus.knownResult('c')).toEqual({ value: [1, 'two'] });
    sub.close();
    expect(bus.knownResult('c')).toBeNull();
  });

  it('ends a subscriber that falls too far behind with RESOURCE_EXHAUSTED, leaving the others alone', async () => {
    const bus = await startBus({ bufferSize: 5 });
    const slow = bus.subscribe({ namespace: 'flood' });
    const fast = bus.subscribe({ namespace: 'flood' });
    await Promise.all([slow.ready(), fast.ready()]);
    const firstIds = await append(t.database, Array.from({ length: 4 }, () => ({ namespace: 'flood' })));
    expect((await take(fast, 4)).map((e) => e.id)).toEqual(firstIds);
    const moreIds = await append(t.database, Array.from({ length: 4 }, () => ({ namespace: 'flood' })));
    expect((await take(fast, 4)).map((e) => e.id)).toEqual(moreIds);
    await bus.refresh();
    await expect(slow.failure).rejects.toBeInstanceOf(ResourceExhaustedError);
    const err = await slow.next().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResourceExhaustedError);
    expect((err as ResourceExhaustedError).code).toBe('SUBSCRIBER_TOO_SLOW');
    expect(slow.ended).toBe(true);
    expect(fast.ended).toBe(false);
    fast.close();
  });

  it('answers OUT_OF_RANGE for a cursor whose events were removed, and replays from the oldest for 0', async () => {
    const bus = await startBus();
    const ids = await append(t.database, Array.from({ length: 3 }, () => ({ namespace: 'retention' })));
    await sql`delete from tasker_events where id <= ${ids[1]!}`.execute(t.database.db);
    const expired = bus.subscribe({ namespace: 'retention' }, { afterCursor: ids[0]! - 1 });
    const err = await expired.next().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutOfRangeError);
    expect((err as OutOfRangeError).code).toBe('CURSOR_EXPIRED');
    const fromOldest = bus.subscribe({ namespace: 'retention' }, { afterCursor: 0 });
    expect((await take(fromOldest, 1)).map((e) => e.id)).toEqual([ids[2]]);
    fromOldest.close();
  });

  it('fails open subscriptions with UNAVAILABLE when stopped, and refuses new ones', async () => {
    const bus = await startBus();
    const sub = bus.subscribe({});
    await sub.ready();
    const pending = expect(sub.next()).rejects.toBeInstanceOf(UnavailableError);
    await bus.stop();
    await pending;
    const late = bus.subscribe({});
    await expect(late.next()).rejects.toBeInstanceOf(UnavailableError);
  });

  it('closes a subscription when its signal aborts', async () => {
    const bus = await startBus();
    const controller = new AbortController();
    const sub = bus.subscribe({}, { signal: controller.signal });
    await sub.ready();
    const pending = sub.next();
    controller.abort();
    expect(await pending).toEqual({ value: undefined, done: true });
    expect(bus.subscriberCount).toBe(0);
  });

  it.runIf(backend.name === 'postgres')('holds back a later id until the transaction holding an earlier one ends', async () => {
    const bus = await startBus();
    const sub = bus.subscribe({ namespace: 'order' });
    await sub.ready();
    const url = t.url as string;
    const holder = new pg.Client({ connectionString: url });
    await holder.connect();
    try {
      // Committed first, inserted second: id A < id B, B visible before A.
      await holder.query('begin');
      const a = await holder.query<{ id: string }>(
        `insert into tasker_events (event_type, namespace, task_name, task_id, created_at)
         values ('task.created', 'order', 'work', gen_random_uuid(), now()) returning id`,
      );
      const idA = Number(a.rows[0]!.id);
      const [idB] = await append(t.database, [{ namespace: 'order' }]);
      expect(idB).toBeGreaterThan(idA);
      const first = sub.next();
      expect(await settledAfter(bus, first)).toBe(false);
      await holder.query(`select pg_notify('tasker_events', $1)`, [String(idA)]);
      await holder.query('commit');
      expect((await first).value?.id).toBe(idA);
      expect((await take(sub, 1)).map((e) => e.id)).toEqual([idB]);

      // Rolled back: the missing id is skipped once its transaction has ended.
      await holder.query('begin');
      await holder.query(
        `insert into tasker_events (event_type, namespace, task_name, task_id, created_at)
         values ('task.created', 'order', 'work', gen_random_uuid(), now())`,
      );
      const [idC] = await append(t.database, [{ namespace: 'order' }]);
      const third = sub.next();
      expect(await settledAfter(bus, third)).toBe(false);
      await holder.query('rollback');
      await bus.refresh();
      expect((await third).value?.id).toBe(idC);
    } finally {
      await holder.end();
      sub.close();
    }
  });

  it.runIf(backend.name === 'postgres')('does not let a subscriber replay past an id still in flight when the bus starts', async () => {
    const holder = new pg.Client({ connectionString: t.url as string });
    await holder.connect();
    try {
      await holder.query('begin');
      const held = await holder.query<{ id: string }>(
        `insert into tasker_events (event_type, namespace, task_name, task_id, created_at)
         values ('task.created', 'startup', 'work', gen_random_uuid(), now()) returning id`,
      );
      const [later] = await append(t.database, [{ namespace: 'startup' }]);
      const bus = await startBus({ gapRecheckMs: 5 });
      const sub = bus.subscribe({ namespace: 'startup' }, { afterCursor: Number(held.rows[0]!.id) - 1 });
      const first = sub.next();
      expect(await settledAfter(bus, first)).toBe(false);
      await holder.query('commit');
      expect((await first).value?.id).toBe(Number(held.rows[0]!.id));
      expect((await take(sub, 1)).map((e) => e.id)).toEqual([later]);
      sub.close();
    } finally {
      await holder.end();
    }
  });
});
