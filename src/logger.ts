/**
 * The root logger. One per process, created by the CLI from `config.log` and passed
 * down; components take `logger.child({ component: '…' })`.
 */
import { createRequire } from 'node:module';
import pino from 'pino';
import type { DestinationStream, Logger } from 'pino';
import type { Config } from './config/schema.js';

type PrettyFactory = (options: Record<string, unknown>) => DestinationStream;

/** pino-pretty is a devDependency: absent in a production install, in which case logs stay JSON. */
function loadPretty(): PrettyFactory | null {
  try {
    const required = createRequire(import.meta.url)('pino-pretty') as PrettyFactory | { default: PrettyFactory };
    return typeof required === 'function' ? required : required.default;
  } catch {
    return null;
  }
}

/**
 * Creates the root logger: JSON lines by default, human-readable when `pretty` is set
 * and pino-pretty can be loaded. Writes synchronously to `destination` (default
 * stdout), so nothing is lost when the process exits right after logging.
 */
export function createLogger(config: Config['log'], destination?: DestinationStream): Logger {
  const options = { name: 'tasker', level: config.level, timestamp: pino.stdTimeFunctions.isoTime };
  const pretty = config.pretty ? loadPretty() : null;
  if (pretty) {
    const stream = pretty({
      destination: destination ?? 1,
      sync: true,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname,name',
    });
    return pino(options, stream);
  }
  const logger = pino(options, destination ?? pino.destination({ dest: 1, sync: true }));
  if (config.pretty) logger.debug('pino-pretty is not installed: logging JSON');
  return logger;
}
