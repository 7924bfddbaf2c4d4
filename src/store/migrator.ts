/**
 * Schema migrations. `migrations/NNNN_description.sql` files are forward-only; each is
 * applied once, in version order, in its own transaction, and recorded with its
 * checksum in `tasker_schema_migrations`. Then every `sql/*.sql` file (functions and
 * views, written as CREATE OR REPLACE) is re-applied, all in one transaction.
 *
 * Locking: the whole run holds one session-level advisory lock on one connection,
 * so instances starting together apply each migration exactly once; the versions
 * already applied are read only after the lock is held. (On PGlite there is one
 * session, and the connection itself is held for the run.)
 * A migration therefore cannot contain statements that refuse to run in a
 * transaction (CREATE INDEX CONCURRENTLY).
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sql } from 'kysely';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { AppError, ErrorCategory, FailedPreconditionError } from '../domain/errors.js';
import type { Database } from './database.js';
import type { DB } from './schema.js';

/** Table recording applied migrations. */
export const MIGRATIONS_TABLE = 'tasker_schema_migrations';
/** Advisory-lock key held while migrating: "task" in ASCII. */
export const MIGRATION_LOCK_KEY = 0x7461736b;

const MIGRATION_FILE = /^(\d{4,})_([A-Za-z0-9][A-Za-z0-9_-]*)\.sql$/;

/** Options of {@link migrate}. */
export interface MigrateOptions {
  migrationsDir: string;
  sqlDir: string;
  logger?: Logger;
}

/** What {@link migrate} did: names of the migrations it applied now, and the resulting schema version. */
export interface MigrateResult {
  applied: string[];
  version: number;
}

/** Thrown when the database was migrated by a newer Tasker than this one. */
export class SchemaTooNewError extends AppError {
  readonly code = 'SCHEMA_TOO_NEW';
  readonly category = ErrorCategory.FailedPrecondition;
  readonly databaseVersion: number;
  readonly knownVersion: number;
  constructor(databaseVersion: number, knownVersion: number) {
    super(
      `database is at schema version ${databaseVersion} but this Tasker knows only up to ${knownVersion}: upgrade Tasker`,
      { databaseVersion, knownVersion },
    );
    this.databaseVersion = databaseVersion;
    this.knownVersion = knownVersion;
  }
}

/** One migration file as found on disk. */
export interface MigrationFile {
  version: number;
  /** File name without `.sql`, e.g. `0001_initial`. */
  name: string;
  sql: string;
  /** sha256 (hex) of the file with line endings normalized to LF. */
  checksum: string;
}

interface AppliedMigration {
  version: number;
  name: string;
  checksum: string;
}

function checksum(text: string): string {
  return createHash('sha256').update(text.replace(/\r\n/g, '\n')).digest('hex');
}

async function listSqlFiles(dir: string, what: string): Promise<string[]> {
  try {
    return (await readdir(dir)).filter((f) => f.endsWith('.sql')).sort();
  } catch (err) {
    const reason = (err as { code?: string }).code === 'ENOENT' ? 'does not exist' : String(err);
    throw new FailedPreconditionError(`${what} directory ${dir} ${reason}`, 'MIGRATION_INVALID', { dir });
  }
}

/** Reads and validates `migrationsDir`: names must be `NNNN_description.sql`, versions unique. Sorted by version. */
export async function readMigrationFiles(migrationsDir: string): Promise<MigrationFile[]> {
  const files: MigrationFile[] = [];
  const seen = new Map<number, string>();
  for (const file of await listSqlFiles(migrationsDir, 'migrations')) {
    const match = MIGRATION_FILE.exec(file);
    const version = match ? Number(match[1]) : 0;
    if (!match || version < 1) {
      throw new FailedPreconditionError(
        `migration file ${join(migrationsDir, file)} is not named NNNN_description.sql (version >= 1)`,
        'MIGRATION_INVALID',
        { file },
      );
    }
    const other = seen.get(version);
    if (other) {
      throw new FailedPreconditionError(`migrations ${other} and ${file} share version ${version}`, 'MIGRATION_INVALID', { file });
    }
    seen.set(version, file);
    const text = await readFile(join(migrationsDir, file), 'utf8');
    files.push({ version, name: file.slice(0, -'.sql'.length), sql: text, checksum: checksum(text) });
  }
  return files.sort((a, b) => a.version - b.version);
}

type Executor = Kysely<DB>;

async function readApplied(db: Executor): Promise<AppliedMigration[]> {
  const exists = await sql<{ present: boolean }>`select to_regclass(${MIGRATIONS_TABLE}) is not null as present`.execute(db);
  if (!exists.rows[0]?.present) return [];
  const result = await sql<AppliedMigration>`
    select version, name, checksum from ${sql.table(MIGRATIONS_TABLE)} order by version`.execute(db);
  return result.rows;
}

function assertNotTooNew(applied: readonly AppliedMigration[], files: readonly MigrationFile[]): void {
  const databaseVersion = applied.at(-1)?.version ?? 0;
  const knownVersion = files.at(-1)?.version ?? 0;
  if (databaseVersion > knownVersion) throw new SchemaTooNewError(databaseVersion, knownVersion);
}

function assertUnchanged(applied: readonly AppliedMigration[], files: readonly MigrationFile[]): void {
  const byVersion = new Map(files.map((f) => [f.version, f]));
  for (const record of applied) {
    const file = byVersion.get(record.version);
    if (!file) {
      throw new FailedPreconditionError(
        `migration ${record.name} was applied to this database but its file is missing`,
        'MIGRATION_MISSING',
        { version: record.version, name: record.name },
      );
    }
    if (file.checksum !== record.checksum) {
      throw new FailedPreconditionError(
        `migration ${file.name} was changed after it was applied to this database (checksum differs); ` +
          'migrations are forward-only: restore the file and add a new migration',
        'MIGRATION_MODIFIED',
        { version: record.version, name: file.name },
      );
    }
  }
}

/** Runs one SQL script, naming the file in the error if it fails (the transaction then rolls back). */
async function runScript(trx: Executor, file: string, text: string): Promise<void> {
  try {
    await sql.raw(text).execute(trx);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(`${file} failed: ${reason}`, { cause: err });
  }
}

async function applyMigration(conn: Executor, migration: MigrationFile): Promise<void> {
  await conn.transaction().execute(async (trx) => {
    await runScript(trx, `migration ${migration.name}`, migration.sql);
    await sql`
      insert into ${sql.table(MIGRATIONS_TABLE)} (version, name, checksum, applied_at)
      values (${migration.version}, ${migration.name}, ${migration.checksum}, now())`.execute(trx);
  });
}

async function applySqlDir(conn: Executor, sqlDir: string): Promise<number> {
  const files = await listSqlFiles(sqlDir, 'sql');
  const texts = await Promise.all(files.map((f) => readFile(join(sqlDir, f), 'utf8')));
  if (texts.length === 0) return 0;
  await conn.transaction().execute(async (trx) => {
    for (const [i, text] of texts.entries()) await runScript(trx, `sql/${files[i]}`, text);
  });
  return texts.length;
}

async function migrateLocked(conn: Executor, files: MigrationFile[], options: MigrateOptions): Promise<MigrateResult> {
  const applied = await readApplied(conn);
  assertNotTooNew(applied, files);
  assertUnchanged(applied, files);
  await sql`
    create table if not exists ${sql.table(MIGRATIONS_TABLE)} (
      version int primary key,
      name text not null,
      checksum text not null,
      applied_at timestamptz not null default now()
    )`.execute(conn);
  const done = new Set(applied.map((a) => a.version));
  const highestApplied = applied.at(-1)?.version ?? 0;
  const appliedNow: string[] = [];
  for (const migration of files.filter((f) => !done.has(f.version))) {
    if (migration.version < highestApplied) {
      options.logger?.warn({ migration: migration.name, highestApplied }, 'applying a migration older than the newest applied one');
    }
    await applyMigration(conn, migration);
    appliedNow.push(migration.name);
    options.logger?.info({ migration: migration.name }, 'applied migration');
  }
  const sqlFiles = await applySqlDir(conn, options.sqlDir);
  const version = Math.max(highestApplied, files.at(-1)?.version ?? 0);
  options.logger?.info({ version, applied: appliedNow.length, sqlFiles }, 'schema up to date');
  return { applied: appliedNow, version };
}

/**
 * Brings the schema up to date: refuses a database newer than the files
 * (`SchemaTooNewError`) or whose applied migrations changed on disk (`MIGRATION_MODIFIED`,
 * `MIGRATION_MISSING`), applies pending migrations, then re-applies `sql/`.
 */
export async function migrate(database: Database, options: MigrateOptions): Promise<MigrateResult> {
  const files = await readMigrationFiles(options.migrationsDir);
  return database.db.connection().execute(async (conn) => {
    // A pool-wide statement_timeout must not cut the lock wait or a long migration short.
    await sql`set statement_timeout = 0`.execute(conn);
    try {
      await sql`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`.execute(conn);
      try {
        return await migrateLocked(conn, files, options);
      } finally {
        await sql`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.execute(conn).catch(() => undefined);
      }
    } finally {
      await sql`reset statement_timeout`.execute(conn).catch(() => undefined);
    }
  });
}

/**
 * Reports the database's schema version and the migration files not yet applied,
 * without changing anything. Throws `SchemaTooNewError` like {@link migrate}; does not
 * compare checksums.
 */
export async function checkSchemaVersion(
  database: Database,
  migrationsDir: string,
): Promise<{ version: number; pending: string[] }> {
  const files = await readMigrationFiles(migrationsDir);
  const applied = await readApplied(database.db);
  assertNotTooNew(applied, files);
  const done = new Set(applied.map((a) => a.version));
  return { version: applied.at(-1)?.version ?? 0, pending: files.filter((f) => !done.has(f.version)).map((f) => f.name) };
}
