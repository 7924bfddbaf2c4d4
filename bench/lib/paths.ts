/** Locations the bench uses. */
import { fileURLToPath } from 'node:url';

/** Absolute path of the repository root. */
export const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
/** Where result JSON, logs and profiles go (git-ignored). */
export const resultsDir = fileURLToPath(new URL('../results/', import.meta.url));
/** The worker programs. */
export const workersDir = fileURLToPath(new URL('../workers/', import.meta.url));
