/** `tasker step retry|resolve|complete`: an operator's repairs of one step. */
import { Step as ProtoStep } from '../../gen/tasker/v1/task.js';
import type { Step } from '../../gen/tasker/v1/task.js';
import { call, CLIENT_OPTIONS, CLIENT_USAGE, connectionFor, createClients } from '../client.js';
import type { TaskerClients } from '../client.js';
import type { CliIo, Command } from '../command.js';
import { COMMON_USAGE, loadCliConfig, parseCommandArgs, println, UsageError } from '../command.js';
import { formatStep } from './task.js';

const OPTIONS = {
  ...CLIENT_OPTIONS,
  result: { type: 'string' },
  reason: { type: 'string' },
} as const;

type Values = ReturnType<typeof parseCommandArgs<typeof OPTIONS>>['values'];

function resultOf(values: Values): unknown {
  if (values.result === undefined) return null;
  try {
    return JSON.parse(values.result) as unknown;
  } catch (err) {
    throw new UsageError(`--result is not valid JSON: ${(err as Error).message}`);
  }
}

async function repair(c: TaskerClients, action: string, stepId: string, values: Values): Promise<Step | undefined> {
  const reason = values.reason ?? '';
  const md = c.metadata();
  switch (action) {
    case 'retry':
      return (await call(c.tasks.retryStep.bind(c.tasks), { stepId, reason }, md)).step;
    case 'resolve':
      return (await call(c.tasks.resolveStep.bind(c.tasks), { stepId, reason }, md)).step;
    case 'complete':
      return (await call(c.tasks.completeStep.bind(c.tasks), { stepId, reason, result: resultOf(values) }, md)).step;
    default:
      throw new UsageError(`expected "tasker step retry|resolve|complete <step-id>", got "step ${action}"`);
  }
}

/** The `step` command. */
export const stepCommand: Command = {
  name: 'step',
  summary: 'repair a step: retry it, resolve it, or complete it with a result',
  usage: `Usage: tasker step retry <step-id> [--reason text]
       tasker step resolve <step-id> [--reason text]
       tasker step complete <step-id> [--result '<json>'] [--reason text]

retry     runs a step in error again, with a fresh allowance of attempts
resolve   marks a pending, waiting or failed step done without a result
complete  completes a pending, waiting or failed step with the given result
          (JSON; default null); its children receive it like a worker's

Options:
      --result <json>   complete: the step's result
      --reason <text>   why, recorded on the transition
${CLIENT_USAGE}
${COMMON_USAGE}`,
  async run(args: readonly string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseCommandArgs(args, OPTIONS);
    if (values.help) {
      println(io.stdout, this.usage);
      return 0;
    }
    const [action, stepId, ...rest] = positionals;
    if (!action || !stepId || rest.length > 0) throw new UsageError('expected "tasker step retry|resolve|complete <step-id>"');
    const config = loadCliConfig(values.config, io);
    const c = createClients(connectionFor(config, values, 'client'));
    try {
      const step = await repair(c, action, stepId, values);
      if (!step) return 0;
      println(io.stdout, values.json ? JSON.stringify(ProtoStep.toJSON(step)) : formatStep(step));
      return 0;
    } finally {
      c.close();
    }
  },
};
