/** `tasker serve`: run the server until SIGINT/SIGTERM, then stop gracefully. */
import type { Logger } from 'pino';
import { startTasker } from '../../app.js';
import { routeGrpcLogs } from '../../grpc/server.js';
import { createLogger } from '../../logger.js';
import type { CliIo, Command } from '../command.js';
import { COMMON_USAGE, loadCliConfig, parseCommandArgs, println, UsageError } from '../command.js';

const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/**
 * Watches SIGINT/SIGTERM from before start-up (a signal that arrives while Tasker is
 * starting stops it as soon as it is up). The first signal resolves `first`; a second
 * one exits at once.
 */
function watchSignals(logger: Logger): { first: Promise<NodeJS.Signals>; dispose(): void } {
  let received = false;
  let resolveFirst: (signal: NodeJS.Signals) => void = () => undefined;
  const first = new Promise<NodeJS.Signals>((resolve) => (resolveFirst = resolve));
  const onSignal = (signal: NodeJS.Signals) => {
    if (received) {
      logger.warn({ signal }, 'second signal: exiting without finishing the shutdown');
      process.exit(130);
    }
    received = true;
    logger.info({ signal }, 'signal received: stopping gracefully (send it again to exit at once)');
    resolveFirst(signal);
  };
  for (const signal of SIGNALS) process.on(signal, onSignal);
  return { first, dispose: () => SIGNALS.forEach((signal) => process.off(signal, onSignal)) };
}

/** The `serve` command. */
export const serveCommand: Command = {
  name: 'serve',
  summary: 'run the Tasker server (the default command)',
  usage: `Usage: tasker serve [options]

Runs the gRPC server on the configured database (embedded PGlite unless
database.url / TASKER_DATABASE_URL is set), migrating it first unless
database.migrate_on_start is false. SIGINT or SIGTERM stops it gracefully;
a second signal exits at once.

Options:
${COMMON_USAGE}`,
  async run(args: readonly string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseCommandArgs(args, {});
    if (values.help) {
      println(io.stdout, this.usage);
      return 0;
    }
    if (positionals.length > 0) throw new UsageError(`serve takes no arguments, got ${positionals.join(' ')}`);
    const config = loadCliConfig(values.config, io);
    const logger = createLogger(config.log);
    routeGrpcLogs(logger.child({ component: 'grpc-js' }));
    const signals = watchSignals(logger);
    try {
      const tasker = await startTasker(config, logger);
      await signals.first;
      await tasker.stop();
      return 0;
    } finally {
      signals.dispose();
    }
  },
};
