/** `tasker config print`: show the effective configuration, secrets redacted. */
import { stringify } from 'yaml';
import { redactConfig } from '../../config/redact.js';
import type { CliIo, Command } from '../command.js';
import { COMMON_USAGE, loadCliConfig, parseCommandArgs, println, UsageError } from '../command.js';

/** The `config` command. */
export const configCommand: Command = {
  name: 'config',
  summary: 'print the effective configuration (config print)',
  usage: `Usage: tasker config print [options]

Loads the configuration exactly as serve would (config/tasker.yaml, the
environment's file, TASKER_CONFIG, --config files, TASKER_* variables),
validates it, and prints the result as YAML with token secrets and the
database password redacted.

Options:
      --json            print JSON instead of YAML
${COMMON_USAGE}`,
  async run(args: readonly string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseCommandArgs(args, { json: { type: 'boolean' } });
    if (values.help) {
      println(io.stdout, this.usage);
      return 0;
    }
    if (positionals.length !== 1 || positionals[0] !== 'print') {
      const got = positionals.length > 0 ? `, got "config ${positionals.join(' ')}"` : '';
      throw new UsageError(`expected "tasker config print"${got}`);
    }
    const config = redactConfig(loadCliConfig(values.config, io));
    io.stdout.write(values.json ? `${JSON.stringify(config, null, 2)}\n` : stringify(config));
    return 0;
  },
};
