/** Opening the embedded PGlite backend of {@link Database}. */
import { mkdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { Kysely } from 'kysely';
import { UnavailableError } from '../domain/errors.js';
import type { Database, OpenDatabaseOptions } from './database.js';
import { assertChannelName } from './listen.js';
import { PgliteDialect, PgliteSessionLock } from './pglite-dialect.js';
import type { DB } from './schema.js';
import { pgliteParsers } from './type-parsing.js';

/**
 * Starts PGlite in memory (`dataDir` null) or persisted in `dataDir` (created if
 * missing). Failure to start is an `UnavailableError` with code `DATABASE_UNREACHABLE`.
 */
export async function openPgliteDatabase(dataDir: string | null, options: OpenDatabaseOptions): Promise<Database> {
  const description = dataDir ? `PGlite at ${dataDir}` : 'PGlite (in memory)';
  let pglite: PGlite;
  try {
    const absolute = dataDir ? resolve(dataDir) : undefined;
    if (absolute) await mkdir(absolute, { recursive: true });
    pglite = await PGlite.create(absolute, { parsers: { ...pgliteParsers } });
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new UnavailableError(`cannot open ${description}: ${reason}`, 'DATABASE_UNREACHABLE', { database: description });
  }
  const lock = new PgliteSessionLock();
  const db = new Kysely<DB>({ dialect: new PgliteDialect({ pglite, lock }) });
  options.logger?.debug({ database: description }, 'database opened');
  let closing: Promise<void> | null = null;

  return {
    db,
    kind: 'pglite',
    description,
    async listen(channel, onPayload) {
      assertChannelName(channel);
      // LISTEN/UNLISTEN take the session lock so they never run inside someone's transaction.
      const unlisten = await lock.run(() => pglite.listen(channel, onPayload));
      let done = false;
      return async () => {
        if (done || closing) return;
        done = true;
        await lock.run(async () => {
          if (!pglite.closed) await unlisten();
        });
      };
    },
    close() {
      closing ??= db.destroy();
      return closing;
    },
  };
}
