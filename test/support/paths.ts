/** Locations in the repository that tests need. */
import { fileURLToPath } from 'node:url';

/** Absolute path of the repository root. */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** The real migrations/ directory. */
export const migrationsDir = fileURLToPath(new URL('../../migrations/', import.meta.url));
/** The real sql/ directory. */
export const sqlDir = fileURLToPath(new URL('../../sql/', import.meta.url));

/** `url` with its database name replaced by `database`. */
export function withDatabaseName(url: string, database: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${encodeURIComponent(database)}`;
  return parsed.toString();
}

/** `name` quoted as a PostgreSQL identifier. */
export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}
