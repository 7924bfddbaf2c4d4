/** `tasker migrate`: apply pending schema migrations and report the schema version. */
import { openConfiguredDatabase } from '../../app.js';
import { migrationsDir, sqlDir } from '../../config/paths.js';
import { createLogger } from '../../logger.js';
import { migrate } from '../../store/migrator.js';
import type { CliIo, Command } from '../command.js';
import { COMMON_USAGE, loadCliConfig, parseCommandArgs, println, UsageError } from '../command.js';

/** The `migrate` command. */
export const migrateCommand: Command = {
  name: 'migrate',
  summary: 'apply pending database migrations and exit',
  usage: `Usage: tasker migrate [options]

Applies the migrations in migrations/ that the configured database lacks (each
once, in order, under an advisory lock), re-applies sql/, and prints what was
applied and the resulting schema version.

Options:
      --json            print {"applied": [...], "version": N, "database": "..."}
${COMMON_USAGE}`,
  async run(args: readonly string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseCommandArgs(args, { json: { type: 'boolean' } });
    if (values.help) {
      println(io.stdout, this.usage);
      return 0;
    }
    if (positionals.length > 0) throw new UsageError(`migrate takes no arguments, got ${positionals.join(' ')}`);
    const config = loadCliConfig(values.config, io);
    const logger = createLogger({ ...config.log, level: config.log.level === 'info' ? 'warn' : config.log.level });
    const database = await openConfiguredDatabase(config, logger);
    try {
      const result = await migrate(database, { migrationsDir, sqlDir, logger: logger.child({ component: 'migrator' }) });
      if (values.json) {
        println(io.stdout, JSON.stringify({ ...result, database: database.description }));
        return 0;
      }
      if (result.applied.length === 0) {
        println(io.stdout, `Schema is up to date at version ${result.version} (${database.description}).`);
      } else {
        println(io.stdout, `Applied ${result.applied.length} migration(s) to ${database.description}:`);
        for (const name of result.applied) println(io.stdout, `  ${name}`);
        println(io.stdout, `Schema version: ${result.version}`);
      }
      if (database.kind === 'pglite' && config.database.data_dir === null) {
        println(io.stdout, 'Note: the database is PGlite in memory, so nothing persists after this command.');
      }
      return 0;
    } finally {
      await database.close();
    }
  },
};
