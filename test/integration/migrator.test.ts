import { mkdtemp, rm, writeFile, mkdir, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { openDatabase } from '../../src/store/database.js';
import { checkSchemaVersion, migrate, SchemaTooNewError } from '../../src/store/migrator.js';
import { backends, createPostgresTestDatabase } from '../support/databases.js';
import type { TestDatabase } from '../support/databases.js';

/** A scratch migrations/ + sql/ pair that a test writes files into. */
interface ScratchDirs {
  migrationsDir: string;
  sqlDir: string;
  write(relative: string, text: string): Promise<void>;
  remove(relative: string): Promise<void>;
}

let scratchRoot: string;
beforeAll(async () => {
  scratchRoot = await mkdtemp(join(tmpdir(), 'tasker-migrator-'));
});
afterAll(async () => {
  await rm(scratchRoot, { recursive: true, force: true });
});

async function scratchDirs(): Promise<ScratchDirs> {
  const root = await mkdtemp(join(scratchRoot, 'case-'));
  const migrationsDir = join(root, 'migrations');
  const sqlDir = join(root, 'sql');
  await mkdir(migrationsDir);
  await mkdir(sqlDir);
  return {
    migrationsDir,
    sqlDir,
    write: (relative, text) => writeFile(join(root, relative), text),
    remove: (relative) => unlink(join(root, relative)),
  };
}

const M1 = `
  create table widgets (id serial primary key, name text not null);
  insert into widgets (name) values ('first');
`;
const M2 = `alter table widgets add column colour text; update widgets set colour = 'red';`;
const M10 = `create index widgets_name_idx on widgets (name);`;
const SQL_FN = (n: number) => `
  create or replace function widget_magic() returns int language sql as $$ select ${n} $$;
  create or replace view widget_names as select name, widget_magic() as magic from widgets;
`;

describe.each(backends)('migrate on $name', ({ create }) => {
  let t: TestDatabase;
  let dirs: ScratchDirs;

  afterEach(async () => {
    await t?.close();
  });

  async function fresh(): Promise<void> {
    t = await create({ empty: true });
    dirs = await scratchDirs();
    await dirs.write('migrations/0001_widgets.sql', M1);
    await dirs.write('migrations/0002_colour.sql', M2);
    await dirs.write('migrations/0010_index.sql', M10);
    await dirs.write('sql/10_widget_magic.sql', SQL_FN(1));
  }

  test('applies migrations in version order, records them, and is idempotent', async () => {
    await fresh();
    const before = await checkSchemaVersion(t.database, dirs.migrationsDir);
    expect(before).toEqual({ version: 0, pending: ['0001_widgets', '0002_colour', '0010_index'] });

    const first = await migrate(t.database, dirs);
    expect(first).toEqual({ applied: ['0001_widgets', '0002_colour', '0010_index'], version: 10 });
    const { rows } = await sql<{ version: number; name: string }>`
      select version, name from tasker_schema_migrations order by version`.execute(t.database.db);
    expect(rows).toEqual([
      { version: 1, name: '0001_widgets' },
      { version: 2, name: '0002_colour' },
      { version: 10, name: '0010_index' },
    ]);
    const { rows: widgets } = await sql`select name, colour from widgets`.execute(t.database.db);
    expect(widgets).toEqual([{ name: 'first', colour: 'red' }]);

    expect(await migrate(t.database, dirs)).toEqual({ applied: [], version: 10 });
    expect(await checkSchemaVersion(t.database, dirs.migrationsDir)).toEqual({ version: 10, pending: [] });

    await dirs.write('migrations/0011_more.sql', `insert into widgets (name, colour) values ('second', 'blue');`);
    expect(await checkSchemaVersion(t.database, dirs.migrationsDir)).toEqual({ version: 10, pending: ['0011_more'] });
    expect(await migrate(t.database, dirs)).toEqual({ applied: ['0011_more'], version: 11 });
  });

  test('re-applies every sql/ file on each run', async () => {
    await fresh();
    await migrate(t.database, dirs);
    const magic = async () =>
      (await sql<{ magic: number }>`select magic from widget_names`.execute(t.database.db)).rows[0]?.magic;
    expect(await magic()).toBe(1);
    await dirs.write('sql/10_widget_magic.sql', SQL_FN(2));
    expect(await migrate(t.database, dirs)).toEqual({ applied: [], version: 10 });
    expect(await magic()).toBe(2);
  });

  test('refuses a migration changed after it was applied, and applies nothing', async () => {
    await fresh();
    await migrate(t.database, dirs);
    await dirs.write('migrations/0002_colour.sql', `${M2}\n-- edited`);
    await dirs.write('migrations/0011_more.sql', `create table should_not_exist (id int);`);
    await expect(migrate(t.database, dirs)).rejects.toMatchObject({
      code: 'MIGRATION_MODIFIED',
      category: 'failed_precondition',
      message: expect.stringContaining('migration 0002_colour was changed after it was applied'),
    });
    const { rows } = await sql<{ present: boolean }>`select to_regclass('should_not_exist') is not null as present`.execute(
      t.database.db,
    );
    expect(rows[0]?.present).toBe(false);
  });

  test('refuses a database newer than the migration files', async () => {
    await fresh();
    await migrate(t.database, dirs);
    await dirs.remove('migrations/0010_index.sql');
    const expected = 'database is at schema version 10 but this Tasker knows only up to 2: upgrade Tasker';
    const error = await migrate(t.database, dirs).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SchemaTooNewError);
    expect(error).toMatchObject({ code: 'SCHEMA_TOO_NEW', category: 'failed_precondition', message: expected });
    await expect(checkSchemaVersion(t.database, dirs.migrationsDir)).rejects.toMatchObject({ code: 'SCHEMA_TOO_NEW', message: expected });
  });

  test('a failing migration rolls back whole and is not recorded', async () => {
    await fresh();
    await dirs.write('migrations/0011_broken.sql', `create table half_done (id int);\nselect * from no_such_table;`);
    await expect(migrate(t.database, dirs)).rejects.toThrow(/^migration 0011_broken failed: .*no_such_table/);
    const { rows } = await sql<{ version: number }>`select version from tasker_schema_migrations order by version`.execute(t.database.db);
    expect(rows.map((r) => r.version)).toEqual([1, 2, 10]);
    const { rows: half } = await sql<{ present: boolean }>`select to_regclass('half_done') is not null as present`.execute(t.database.db);
    expect(half[0]?.present).toBe(false);
  });

  test('rejects misnamed migration files', async () => {
    await fresh();
    await dirs.write('migrations/3_oops.sql', 'select 1;');
    await expect(migrate(t.database, dirs)).rejects.toMatchObject({ code: 'MIGRATION_INVALID' });
  });
});

describe('migrate on postgres: concurrent instances', () => {
  test('two instances migrating the same fresh database at once apply each migration exactly once', async () => {
    const t = await createPostgresTestDatabase({ empty: true });
    const other = await openDatabase({ url: t.url });
    try {
      const dirs = await scratchDirs();
      await dirs.write('migrations/0001_counter.sql', `create table applied_count (n int); select pg_sleep(0.2);`);
      await dirs.write('migrations/0002_bump.sql', `insert into applied_count values (1);`);
      await dirs.write('migrations/0003_bump.sql', `insert into applied_count values (1);`);
      await dirs.write('sql/views.sql', `create or replace view applied_total as select count(*) as n from applied_count;`);
      const [a, b] = await Promise.all([migrate(t.database, dirs), migrate(other, dirs)]);
      expect(a.version).toBe(3);
      expect(b.version).toBe(3);
      expect([...a.applied, ...b.applied].sort()).toEqual(['0001_counter', '0002_bump', '0003_bump']);
      const { rows } = await sql<{ n: number }>`select count(*)::int as n from applied_count`.execute(t.database.db);
      expect(rows[0]?.n).toBe(2);
    } finally {
      await other.close();
      await t.close();
    }
  });

  test('a pool statement_timeout does not cut a long migration short, and is back afterwards', async () => {
    const t = await createPostgresTestDatabase({ empty: true });
    const strict = await openDatabase({ url: t.url, statementTimeoutMs: 100, poolSize: 1 });
    try {
      const dirs = await scratchDirs();
      await dirs.write('migrations/0001_slow.sql', `select pg_sleep(0.3); create table slow_done (id int);`);
      expect(await migrate(strict, dirs)).toEqual({ applied: ['0001_slow'], version: 1 });
      const { rows } = await sql<{ timeout: string }>`select current_setting('statement_timeout') as timeout`.execute(strict.db);
      expect(rows[0]?.timeout).toBe('100ms');
      await expect(sql`select pg_sleep(0.3)`.execute(strict.db)).rejects.toMatchObject({ code: '57014' });
    } finally {
      await strict.close();
      await t.close();
    }
  });
});
