import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, test } from 'vitest';
import { UnavailableError } from '../../src/domain/errors.js';
import { openDatabase } from '../../src/store/database.js';
import type { Database } from '../../src/store/database.js';
import { backends } from '../support/databases.js';
import type { TestDatabase } from '../support/databases.js';
import { withDatabaseName } from '../support/paths.js';

/** Resolves with the first payload `database` receives on `channel`, once `send` has been called. */
async function nextPayload(database: Database, channel: string, send: () => Promise<void>): Promise<string> {
  let resolvePayload!: (p: string) => void;
  const received = new Promise<string>((resolve) => (resolvePayload = resolve));
  const unsubscribe = await database.listen(channel, resolvePayload);
  try {
    await send();
    return await received;
  } finally {
    await unsubscribe();
  }
}

describe.each(backends)('Database on $name', ({ name, create }) => {
  let t: TestDatabase;
  let db: Database['db'];

  beforeAll(async () => {
    t = await create();
    db = t.database.db;
    await sql`create table store_db_probe (id serial primary key, label text not null)`.execute(db);
  });
  afterAll(async () => {
    await t?.close();
  });

  test('runs a select and describes itself', async () => {
    const { rows } = await sql<{ one: number }>`select 1 as one`.execute(db);
    expect(rows).toEqual([{ one: 1 }]);
    expect(t.database.kind).toBe(name);
    expect(t.database.description).toMatch(name === 'postgres' ? /^postgres(ql)?:\/\/[^:@/]*@?[^/]+\/tasker_test_[0-9a-f]+$/ : /^PGlite \(in memory\)$/);
  });

  test('a transaction that throws rolls back and the connection stays usable', async () => {
    const failure = db.transaction().execute(async (trx) => {
      await sql`insert into store_db_probe (label) values ('rolled-back')`.execute(trx);
      throw new Error('boom');
    });
    await expect(failure).rejects.toThrow('boom');
    const sqlError = db.transaction().execute(async (trx) => {
      await sql`insert into store_db_probe (label) values ('rolled-back')`.execute(trx);
      await sql`select * from no_such_table`.execute(trx);
    });
    await expect(sqlError).rejects.toMatchObject({ code: '42P01' });
    const { rows } = await sql<{ n: number }>`select count(*)::int as n from store_db_probe where label = 'rolled-back'`.execute(db);
    expect(rows[0]?.n).toBe(0);
  });

  test('concurrent transactions both commit; on PGlite they run one after the other', async () => {
    await sql`create table interleave_probe (seq serial primary key, label text not null)`.execute(db);
    const work = (who: string) =>
      db.transaction().execute(async (trx) => {
        await sql`insert into interleave_probe (label) values (${`${who}-start`})`.execute(trx);
        await new Promise((r) => setTimeout(r, 20));
        await sql`insert into interleave_probe (label) values (${`${who}-end`})`.execute(trx);
      });
    await Promise.all([work('a'), work('b'), work('c')]);
    const { rows } = await sql<{ label: string }>`select label from interleave_probe order by seq`.execute(db);
    const labels = rows.map((r) => r.label);
    expect([...labels].sort()).toEqual(['a-end', 'a-start', 'b-end', 'b-start', 'c-end', 'c-start']);
    if (name === 'pglite') {
      for (let i = 0; i < labels.length; i += 2) {
        const who = labels[i]?.split('-')[0];
        expect(labels.slice(i, i + 2)).toEqual([`${who}-start`, `${who}-end`]);
      }
    }
  });

  test('jsonb, int8, numeric, timestamptz, date and arrays read back identically', async () => {
    await sql`
      create table value_probe (
        j jsonb, small int8, huge int8, n numeric, ts timestamptz, plain timestamp, d date, ids int8[], u uuid[]
      )`.execute(db);
    const doc = { a: [1, 'x', null], b: { c: true, d: 1.5 } };
    const at = new Date('2024-02-29T12:34:56.789Z');
    const uuids = ['6f1c1f3e-4a53-4c1b-9d3e-3f1e0a2b7c01', '0b8a7e2c-5d3f-4e6a-8b1c-2d4e6f8a0c12'];
    await sql`
      insert into value_probe values (
        ${JSON.stringify(doc)}::jsonb, ${42}, 9007199254740993, 1.50, ${at}, '2024-02-29 12:34:56.789',
        '2024-02-29', ${[1, 2, 3]}::int8[], ${uuids}::uuid[]
      )`.execute(db);
    const { rows } = await sql`select * from value_probe`.execute(db);
    expect(rows).toEqual([
      { j: doc, small: 42, huge: '9007199254740993', n: '1.50', ts: at, plain: at, d: '2024-02-29', ids: [1, 2, 3], u: uuids },
    ]);
    const { rows: unnested } = await sql<{ id: string }>`select id from unnest(${uuids}::uuid[]) as id order by id`.execute(db);
    expect(unnested.map((r) => r.id)).toEqual([...uuids].sort());
    const { rows: nulls } = await sql`select null::int8 as a, array[null, 7]::int8[] as b, null::jsonb as c`.execute(db);
    expect(nulls).toEqual([{ a: null, b: [null, 7], c: null }]);
  });

  test('FOR UPDATE SKIP LOCKED runs inside a transaction', async () => {
    const claimed = await db.transaction().execute(async (trx) => {
      const { rows } = await sql<{ id: number }>`
        select id from store_db_probe order by id limit 5 for update skip locked`.execute(trx);
      return rows;
    });
    expect(Array.isArray(claimed)).toBe(true);
  });

  test('LISTEN receives pg_notify payloads; an unsubscribed callback receives nothing more', async () => {
    const seen: string[] = [];
    const unsubscribe = await t.database.listen('tasker_probe_a', (p) => seen.push(p));
    const first = await nextPayload(t.database, 'tasker_probe_b', async () => {
      await sql`select pg_notify('tasker_probe_a', 'hello')`.execute(db);
      await sql`select pg_notify('tasker_probe_b', 'marker-1')`.execute(db);
    });
    expect(first).toBe('marker-1');
    expect(seen).toEqual(['hello']);
    await unsubscribe();
    const second = await nextPayload(t.database, 'tasker_probe_b', async () => {
      await sql`select pg_notify('tasker_probe_a', 'after-unsubscribe')`.execute(db);
      await sql`select pg_notify('tasker_probe_b', 'marker-2')`.execute(db);
    });
    expect(second).toBe('marker-2');
    expect(seen).toEqual(['hello']);
  });

  test('a notification sent inside a transaction arrives after commit', async () => {
    const payload = await nextPayload(t.database, 'tasker_probe_tx', async () => {
      await db.transaction().execute(async (trx) => {
        await sql`select pg_notify('tasker_probe_tx', ${JSON.stringify({ id: 7 })})`.execute(trx);
      });
    });
    expect(JSON.parse(payload)).toEqual({ id: 7 });
  });

  test('rejects channel names that are not plain lower-case identifiers', async () => {
    await expect(t.database.listen('Bad-Name', () => undefined)).rejects.toThrow(/invalid notification channel/);
  });
});

describe('Database on postgres: LISTEN connection', () => {
  test('re-establishes LISTEN after its connection is terminated', async () => {
    const t = await backends[0]!.create({ empty: true });
    try {
      const received: string[] = [];
      await t.database.listen('tasker_probe_reconnect', (p) => received.push(p));
      const { rows } = await sql<{ n: number }>`
        select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
        where application_name = 'tasker-test:listen' and datname = current_database()`.execute(t.database.db);
      expect(rows[0]?.n).toBe(1);
      // Notifications sent while the connection is down are lost: keep sending until one arrives.
      for (let i = 0; i < 200 && received.length === 0; i++) {
        await sql`select pg_notify('tasker_probe_reconnect', ${`try-${i}`})`.execute(t.database.db);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(received[0]).toMatch(/^try-\d+$/);
    } finally {
      await t.close();
    }
  });
});

describe('openDatabase', () => {
  async function closedLoopbackPort(): Promise<number> {
    return new Promise((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        const port = typeof address === 'object' && address ? address.port : 0;
        server.close(() => resolve(port));
      });
    });
  }

  test('an unreachable server is DATABASE_UNREACHABLE with a readable, redacted message', async () => {
    const port = await closedLoopbackPort();
    const error = await openDatabase({ url: `postgres://tasker:s3cret@127.0.0.1:${port}/tasker` }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnavailableError);
    const { code, message } = error as UnavailableError;
    expect(code).toBe('DATABASE_UNREACHABLE');
    expect(message).toBe(
      `cannot connect to PostgreSQL at postgres://tasker@127.0.0.1:${port}/tasker: ` +
        'connection refused (ECONNREFUSED): is the server running and listening there?',
    );
    expect(message).not.toContain('s3cret');
  });

  test('PostgreSQL sessions carry application_name and statement_timeout', async () => {
    const database = await openDatabase({ url: inject('pgAdminUrl'), applicationName: 'tasker-probe', statementTimeoutMs: 1234 });
    try {
      const { rows } = await sql<{ app: string; timeout: string }>`
        select current_setting('application_name') as app, current_setting('statement_timeout') as timeout`.execute(database.db);
      expect(rows).toEqual([{ app: 'tasker-probe', timeout: '1234ms' }]);
    } finally {
      await database.close();
    }
  });

  test('a missing database is DATABASE_UNREACHABLE and says so', async () => {
    const url = withDatabaseName(inject('pgAdminUrl'), 'tasker_no_such_database');
    await expect(openDatabase({ url })).rejects.toMatchObject({
      code: 'DATABASE_UNREACHABLE',
      message: expect.stringContaining('database "tasker_no_such_database" does not exist (SQLSTATE 3D000)'),
    });
  });

  test('PGlite in a data directory keeps its data across reopen', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tasker-pglite-'));
    const dataDir = join(dir, 'nested', 'data');
    try {
      const first = await openDatabase({ dataDir });
      expect(first.description).toBe(`PGlite at ${dataDir}`);
      await sql`create table kept (v text)`.execute(first.db);
      await sql`insert into kept values ('still here')`.execute(first.db);
      await first.close();
      const second = await openDatabase({ dataDir });
      const { rows } = await sql<{ v: string }>`select v from kept`.execute(second.db);
      await second.close();
      expect(rows).toEqual([{ v: 'still here' }]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
