/**
 * The CLI dispatcher: picks the command, runs it, and turns failures into one
 * readable line and an exit code. Exit codes: 0 success; 1 failure; 64 bad command
 * line (EX_USAGE); 78 invalid configuration (EX_CONFIG).
 */
import { AppError, ConfigError } from '../domain/errors.js';
import type { CliIo, Command } from './command.js';
import { println, UsageError } from './command.js';
import { commands, DEFAULT_COMMAND } from './commands/index.js';

/** Exit code of a bad command line (sysexits EX_USAGE). */
export const EXIT_USAGE = 64;
/** Exit code of an invalid configuration (sysexits EX_CONFIG). */
export const EXIT_CONFIG = 78;

function helpText(registry: readonly Command[]): string {
  const width = Math.max(...registry.map((c) => c.name.length));
  const lines = registry.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `Usage: tasker [command] [options]

Tasker: DAG workflow orchestration on PostgreSQL, with step work done by
Ruby, Python and Node workers over gRPC.

Commands:
${lines.join('\n')}

With no command, tasker runs serve. "tasker <command> --help" shows a command's options.
Configuration: config/tasker.yaml, config/tasker.<TASKER_ENV>.yaml, TASKER_CONFIG,
--config files, then TASKER_<KEY_PATH> variables (see config/tasker.yaml).
Exit codes: 0 ok, 1 failure, 64 bad command line, 78 invalid configuration.`;
}

/** Prints an error the way a person wants to read it; returns the exit code. */
export function reportError(err: unknown, stderr: NodeJS.WritableStream): number {
  if (err instanceof UsageError) {
    println(stderr, `tasker: ${err.message}`);
    println(stderr, 'Run "tasker --help" for usage.');
    return EXIT_USAGE;
  }
  if (err instanceof ConfigError) {
    println(stderr, `tasker: ${err.message}`);
    return EXIT_CONFIG;
  }
  if (err instanceof AppError) {
    // Deliberate, explained failures (DATABASE_UNREACHABLE, ADDRESS_IN_USE, SCHEMA_TOO_NEW, ...): no stack trace.
    println(stderr, `tasker: ${err.message}`);
    return 1;
  }
  const error = err instanceof Error ? err : new Error(String(err));
  println(stderr, `tasker: unexpected error: ${error.message}`);
  if (error.stack) println(stderr, error.stack);
  return 1;
}

/** Runs the command line `argv` (without node and the script); resolves to the exit code. */
export async function runCli(argv: readonly string[], io: CliIo, registry: readonly Command[] = commands): Promise<number> {
  const first = argv[0];
  if (first === '--help' || first === '-h' || first === 'help') {
    const named = registry.find((c) => c.name === argv[1]);
    println(io.stdout, named ? named.usage : helpText(registry));
    return 0;
  }
  const explicit = first !== undefined && !first.startsWith('-');
  const name = explicit ? first : DEFAULT_COMMAND;
  const command = registry.find((c) => c.name === name);
  try {
    if (!command) throw new UsageError(`unknown command "${name}" (commands: ${registry.map((c) => c.name).join(', ')})`);
    return await command.run(explicit ? argv.slice(1) : argv, io);
  } catch (err) {
    return reportError(err, io.stderr);
  }
}
