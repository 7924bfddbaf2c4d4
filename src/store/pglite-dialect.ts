/**
 * A Kysely dialect for PGlite (PostgreSQL compiled to WebAssembly, running in this
 * process). SQL generation and introspection are Kysely's own PostgreSQL parts; only
 * the driver is ours.
 *
 * Locking: PGlite is one PostgreSQL backend, i.e. one session. Kysely is given that
 * session as its only connection, guarded by a FIFO lock: a plain query holds it for
 * one statement, a transaction from `begin` until `commit`/`rollback`, and
 * `db.connection()` for the whole callback. Anything else that talks to the same
 * PGlite (LISTEN/UNLISTEN in `pglite-database.ts`) must take the same lock, or its
 * statements would land inside someone else's transaction.
 * Consequence: inside a transaction, use `trx`, never the outer `db` — on PGlite the
 * outer `db` waits for the transaction that is waiting for it.
 */
import type { PGlite, Results } from '@electric-sql/pglite';
import { CompiledQuery, PostgresAdapter, PostgresIntrospector, PostgresQueryCompiler } from 'kysely';
import type {
  DatabaseConnection,
  DatabaseIntrospector,
  Dialect,
  DialectAdapter,
  Driver,
  Kysely,
  QueryCompiler,
  QueryResult,
  TransactionSettings,
} from 'kysely';

/** A first-in-first-out async lock. `acquire()` resolves with the function that releases it. */
export class PgliteSessionLock {
  #tail: Promise<void> = Promise.resolve();

  /** Waits for every earlier holder to release, then returns this holder's release function. */
  acquire(): Promise<() => void> {
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const previous = this.#tail;
    this.#tail = previous.then(() => released);
    return previous.then(() => {
      let done = false;
      return () => {
        if (!done) {
          done = true;
          release();
        }
      };
    });
  }

  /** Runs `fn` while holding the lock. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const release = await this.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

/** Configuration of {@link PgliteDialect}. */
export interface PgliteDialectConfig {
  /** A ready PGlite instance; the dialect's `destroy` (Kysely `db.destroy()`) closes it. */
  readonly pglite: PGlite;
  /** The lock shared with every other user of this PGlite instance. */
  readonly lock: PgliteSessionLock;
}

/** Kysely dialect running queries on an in-process PGlite instance. */
export class PgliteDialect implements Dialect {
  readonly #config: PgliteDialectConfig;

  constructor(config: PgliteDialectConfig) {
    this.#config = config;
  }

  createDriver(): Driver {
    return new PgliteDriver(this.#config);
  }

  createQueryCompiler(): QueryCompiler {
    return new PostgresQueryCompiler();
  }

  createAdapter(): DialectAdapter {
    return new PostgresAdapter();
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- Kysely's Dialect signature
  createIntrospector(db: Kysely<any>): DatabaseIntrospector {
    return new PostgresIntrospector(db);
  }
}

const MODIFYING_COMMANDS = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE']);

function toQueryResult<R>(result: Results<R>): QueryResult<R> {
  const count = result.rowCount ?? result.affectedRows ?? 0;
  return {
    rows: result.rows,
    numAffectedRows: result.command && MODIFYING_COMMANDS.has(result.command) ? BigInt(count) : undefined,
  };
}

function quoteIdentifier(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

class PgliteConnection implements DatabaseConnection {
  readonly #pglite: PGlite;

  constructor(pglite: PGlite) {
    this.#pglite = pglite;
  }

  /**
   * Statements with parameters use the extended protocol (`query`). Statements
   * without parameters use the simple protocol (`exec`), exactly as node-postgres
   * does, so a multi-statement script (a migration) runs the same on both backends;
   * like pg, such a script yields no rows.
   */
  async executeQuery<R>(compiledQuery: CompiledQuery): Promise<QueryResult<R>> {
    if (compiledQuery.parameters.length > 0) {
      return toQueryResult(await this.#pglite.query<R>(compiledQuery.sql, [...compiledQuery.parameters]));
    }
    const results = await this.#pglite.exec(compiledQuery.sql);
    const only = results.length === 1 ? results[0] : undefined;
    return only ? toQueryResult(only as Results<R>) : { rows: [] };
  }

  /** PGlite returns whole results, so the rows are handed out in chunks of an already complete result. */
  async *streamQuery<R>(compiledQuery: CompiledQuery, chunkSize = 100): AsyncIterableIterator<QueryResult<R>> {
    if (!Number.isInteger(chunkSize) || chunkSize <= 0) {
      throw new RangeError('chunkSize must be a positive integer');
    }
    const { rows } = await this.executeQuery<R>(compiledQuery);
    for (let i = 0; i < rows.length; i += chunkSize) {
      yield { rows: rows.slice(i, i + chunkSize) };
    }
  }
}

class PgliteDriver implements Driver {
  readonly #config: PgliteDialectConfig;
  readonly #connection: PgliteConnection;
  #release: (() => void) | null = null;
  #destroyed = false;

  constructor(config: PgliteDialectConfig) {
    this.#config = config;
    this.#connection = new PgliteConnection(config.pglite);
  }

  async init(): Promise<void> {
    await this.#config.pglite.waitReady;
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    if (this.#destroyed) throw new Error('the PGlite database has been closed');
    // Callers already waiting when destroy() is called still get their turn.
    const release = await this.#config.lock.acquire();
    if (this.#config.pglite.closed) {
      release();
      throw new Error('the PGlite database has been closed');
    }
    this.#release = release;
    return this.#connection;
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    let text = 'begin';
    if (settings.isolationLevel || settings.accessMode) {
      text = 'start transaction';
      if (settings.isolationLevel) text += ` isolation level ${settings.isolationLevel}`;
      if (settings.accessMode) text += ` ${settings.accessMode}`;
    }
    await connection.executeQuery(CompiledQuery.raw(text));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('commit'));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('rollback'));
  }

  async savepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`savepoint ${quoteIdentifier(name)}`));
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`rollback to savepoint ${quoteIdentifier(name)}`));
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(`release savepoint ${quoteIdentifier(name)}`));
  }

  async releaseConnection(): Promise<void> {
    const release = this.#release;
    this.#release = null;
    release?.();
  }

  /** Waits for the current holder of the session to finish, then closes PGlite. */
  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    await this.#config.lock.run(async () => {
      if (!this.#config.pglite.closed) await this.#config.pglite.close();
    });
  }
}
