/**
 * What a CLI command is, and the helpers every command shares: argument parsing
 * (node:util parseArgs, with the common `--config` and `--help` options) and
 * loading the configuration.
 */
import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import type { Config } from '../config/schema.js';
import { loadConfig } from '../config/load.js';

/** Where a command writes, and (for tests) the environment it reads. */
export interface CliIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
  /** Environment variables for configuration; default `process.env` (read only in src/config/). */
  readonly env?: NodeJS.ProcessEnv;
}

/** One `tasker <name>` command. */
export interface Command {
  readonly name: string;
  /** One line for `tasker --help`. */
  readonly summary: string;
  /** Full usage text for `tasker <name> --help`. */
  readonly usage: string;
  /** Runs with the arguments after the command name; resolves to the exit code. */
  run(args: readonly string[], io: CliIo): Promise<number>;
}

/** Thrown for a bad command line; printed with a pointer to `--help`, exit code 64 (EX_USAGE). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** Options every command accepts. */
export const COMMON_OPTIONS = {
  config: { type: 'string', multiple: true, short: 'c' },
  help: { type: 'boolean', short: 'h' },
} as const satisfies Options;

/** Common option lines for usage texts. */
export const COMMON_USAGE = `  -c, --config <file>   extra YAML file merged over config/ (repeatable; after TASKER_CONFIG)
  -h, --help            show this help`;

/** Parses `args` strictly with the command's options plus {@link COMMON_OPTIONS}; bad input is a UsageError. */
export function parseCommandArgs<O extends Options>(args: readonly string[], options: O) {
  try {
    return parseArgs({ args: [...args], options: { ...COMMON_OPTIONS, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Loads the configuration with the command line's `--config` files. */
export function loadCliConfig(configFiles: readonly string[] | undefined, io: CliIo): Config {
  return loadConfig({ files: configFiles ?? [], env: io.env });
}

/** Writes `text` plus a newline. */
export function println(stream: NodeJS.WritableStream, text = ''): void {
  stream.write(`${text}\n`);
}
