/**
 * Directories that ship with Tasker, found from this file's location (in `src/config/`
 * when run through tsx, `dist/config/` when built), so they do not depend on the
 * current directory.
 */
import { fileURLToPath } from 'node:url';

function fromRoot(relative: string): string {
  return fileURLToPath(new URL(`../../${relative}`, import.meta.url));
}

/** The Tasker project root: the directory holding package.json, `config/`, `proto/`, `migrations/`. */
export const projectRoot: string = fromRoot('');
/** `proto/`: the wire contract, loaded for server reflection. */
export const protoDir: string = fromRoot('proto');
/** `migrations/`: numbered schema migrations. */
export const migrationsDir: string = fromRoot('migrations');
/** `sql/`: functions and views re-applied by every migrate. */
export const sqlDir: string = fromRoot('sql');
