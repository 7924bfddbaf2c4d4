/**
 * Tasker as the examples run it: in this process, on the embedded database (PGlite,
 * in memory), auth disabled as in development, on a free loopback port, registering
 * the templates of one directory at start.
 */
import { startTasker } from '../src/app.js';
import type { RunningTasker } from '../src/app.js';
import { loadConfig } from '../src/config/load.js';
import { createLogger } from '../src/logger.js';

/** Starts Tasker with the templates under `templatesDir` (relative to the Tasker root). */
export async function startExampleTasker(templatesDir: string): Promise<RunningTasker> {
  const config = loadConfig({
    env: { TASKER_ENV: 'development' },
    overrides: {
      server: { host: '127.0.0.1', port: 0, shutdown_grace_ms: 2_000 },
      database: { url: null, data_dir: null },
      log: { level: 'error', pretty: false },
      templates: { dirs: [templatesDir], register_on_start: true },
    },
  });
  return startTasker(config, createLogger(config.log));
}
