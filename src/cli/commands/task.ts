/** `tasker task create|get|list|watch|cancel|retry`: tasks through TaskService. */
import { readFile } from 'node:fs/promises';
import type * as grpc from '@grpc/grpc-js';
import { stepStateToJSON, TaskState, taskStateToJSON } from '../../gen/tasker/v1/common.js';
import type { StepState } from '../../gen/tasker/v1/common.js';
import { Task as ProtoTask, TaskUpdate as ProtoTaskUpdate } from '../../gen/tasker/v1/task.js';
import type { Step, Task, TaskUpdate } from '../../gen/tasker/v1/task.js';
import { call, CLIENT_OPTIONS, CLIENT_USAGE, connectionFor, createClients, RemoteCallError } from '../client.js';
import type { TaskerClients } from '../client.js';
import type { CliIo, Command } from '../command.js';
import { COMMON_USAGE, loadCliConfig, parseCommandArgs, println, UsageError } from '../command.js';

const OPTIONS = {
  ...CLIENT_OPTIONS,
  context: { type: 'string' },
  'context-file': { type: 'string' },
  priority: { type: 'string' },
  tag: { type: 'string', multiple: true },
  'idempotency-key': { type: 'string' },
  'correlation-id': { type: 'string' },
  initiator: { type: 'string' },
  reason: { type: 'string' },
  state: { type: 'string', multiple: true },
  namespace: { type: 'string' },
  name: { type: 'string' },
  'page-size': { type: 'string' },
  'page-token': { type: 'string' },
  'omit-results': { type: 'boolean' },
  'skip-history': { type: 'boolean' },
  'exit-status': { type: 'boolean' },
} as const;

type Values = ReturnType<typeof parseCommandArgs<typeof OPTIONS>>['values'];

/** `TASK_STATE_IN_PROGRESS` → `in_progress`. */
export const taskStateName = (s: TaskState): string => taskStateToJSON(s).replace(/^TASK_STATE_/, '').toLowerCase();
/** `STEP_STATE_COMPLETE` → `complete`. */
export const stepStateName = (s: StepState): string => stepStateToJSON(s).replace(/^STEP_STATE_/, '').toLowerCase();

/**
 * One step as a line: name, state, attempts used of the current allowance (an
 * operator retry starts a new one; the attempt numbering goes on), id, result, and
 * the last error (kept after a later attempt or an operator repair succeeds).
 */
export function formatStep(s: Step): string {
  const used = `${s.attempts - s.attemptBase}/${s.maxAttempts}`;
  const retried = s.attemptBase > 0 ? `  retried after attempt ${s.attemptBase}` : '';
  const result = s.result === undefined ? '' : `  result=${JSON.stringify(s.result)}`;
  const error = s.lastError ? `  last_error=${s.lastError.errorClass}: ${s.lastError.message}` : '';
  return `${s.name.padEnd(24)} ${stepStateName(s.state).padEnd(18)} ${used}  ${s.stepId}${retried}${result}${error}`;
}

/** A task with its steps as lines. */
export function formatTask(t: Task): string[] {
  const ref = t.template ? `${t.template.namespace}/${t.template.name}@${t.template.version}` : '';
  const lines = [`task ${t.taskId}  ${ref}  ${taskStateName(t.state)}`];
  const c = t.executionContext;
  if (c) lines.push(`  ${c.completedSteps}/${c.totalSteps} steps done (${c.completionPercentage}%), ${c.executionStatus}, next: ${c.recommendedAction}`);
  lines.push(`  created ${t.createdAt?.toISOString() ?? '?'}${t.completedAt ? `, finished ${t.completedAt.toISOString()}` : ''}`);
  if (t.tags.length > 0) lines.push(`  tags: ${t.tags.join(', ')}`);
  for (const s of t.steps) lines.push(`  ${formatStep(s)}`);
  return lines;
}

/** One watch update as a line. */
export function formatUpdate(u: TaskUpdate): string {
  const at = u.at?.toISOString() ?? '';
  const v = u.update;
  if (!v) return `${at} #${u.cursor} (unknown update)`;
  switch (v.$case) {
    case 'taskStateChanged':
      // The first transition of a task has no state before it (the proto's UNSPECIFIED).
      return `${at} #${u.cursor} task ${v.value.fromState === 0 ? 'created' : taskStateName(v.value.fromState)} -> ${taskStateName(v.value.toState)}${v.value.reason ? ` (${v.value.reason})` : ''}`;
    case 'stepStateChanged':
      return `${at} #${u.cursor} step ${v.value.stepName} ${stepStateName(v.value.fromState)} -> ${stepStateName(v.value.toState)} attempt ${v.value.attempt}${v.value.reason ? ` (${v.value.reason})` : ''}`;
    case 'stepProgress':
      return `${at} #${u.cursor} step ${v.value.stepName} progress #${v.value.seq}: ${JSON.stringify(v.value.payload)}`;
    case 'stepResult':
      return `${at} #${u.cursor} step ${v.value.stepName} result: ${JSON.stringify(v.value.result)}`;
  }
}

function printTask(io: CliIo, task: Task | undefined, json: boolean, extra: Record<string, unknown> = {}): void {
  if (!task) return;
  if (json) println(io.stdout, JSON.stringify({ ...extra, task: ProtoTask.toJSON(task) }));
  else for (const line of formatTask(task)) println(io.stdout, line);
}

async function contextOf(values: Values): Promise<Record<string, unknown>> {
  if (values.context !== undefined && values['context-file'] !== undefined) throw new UsageError('give --context or --context-file, not both');
  const file = values['context-file'];
  let text = values.context;
  if (file !== undefined) {
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
    }
  }
  if (text === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`the task context is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new UsageError('the task context must be a JSON object');
  return parsed as Record<string, unknown>;
}

function intOption(value: string | undefined, name: string): number {
  if (value === undefined) return 0;
  if (!/^-?\d+$/.test(value)) throw new UsageError(`--${name} must be an integer, got ${value}`);
  return Number(value);
}

/** `ns/name[@version]`. */
function parseRef(text: string | undefined): { namespace: string; name: string; version: string } {
  const match = text ? /^([^/@]+)\/([^/@]+)(?:@(.+))?$/.exec(text) : null;
  if (!match) throw new UsageError(`expected a template as namespace/name[@version], got ${text ?? 'nothing'}`);
  return { namespace: match[1] as string, name: match[2] as string, version: match[3] ?? '' };
}

function one(args: readonly string[], what: string): string {
  if (args.length !== 1) throw new UsageError(`expected one ${what}, got ${args.length}`);
  return args[0] as string;
}

const STATE_BY_NAME = new Map(
  Object.values(TaskState)
    .filter((s): s is TaskState => typeof s === 'number' && s > 0)
    .map((s) => [taskStateName(s), s]),
);

async function create(c: TaskerClients, args: readonly string[], values: Values, io: CliIo): Promise<number> {
  const ref = parseRef(one(args, 'template (namespace/name[@version])'));
  const res = await call(
    c.tasks.createTask.bind(c.tasks),
    {
      template: ref,
      context: await contextOf(values),
      priority: intOption(values.priority, 'priority'),
      tags: values.tag ?? [],
      initiator: values.initiator ?? '',
      sourceSystem: 'tasker-cli',
      reason: values.reason ?? '',
      correlationId: values['correlation-id'] ?? '',
      idempotencyKey: values['idempotency-key'] ?? '',
    },
    c.metadata(),
  );
  if (!values.json) println(io.stdout, res.created ? 'Created:' : 'An identical task already exists:');
  printTask(io, res.task, values.json === true, { created: res.created });
  return 0;
}

async function list(c: TaskerClients, values: Values, io: CliIo): Promise<number> {
  const states = (values.state ?? []).map((name) => {
    const state = STATE_BY_NAME.get(name);
    if (state === undefined) throw new UsageError(`unknown state ${name} (states: ${[...STATE_BY_NAME.keys()].join(', ')})`);
    return state;
  });
  if ((values.tag?.length ?? 0) > 1) throw new UsageError('task list filters on one --tag');
  const res = await call(
    c.tasks.listTasks.bind(c.tasks),
    {
      namespace: values.namespace ?? '',
      name: values.name ?? '',
      states,
      tag: values.tag?.[0] ?? '',
      pageSize: intOption(values['page-size'], 'page-size'),
      pageToken: values['page-token'] ?? '',
    },
    c.metadata(),
  );
  if (values.json) {
    println(io.stdout, JSON.stringify({ tasks: res.tasks.map((t) => ProtoTask.toJSON(t)), next_page_token: res.nextPageToken }));
    return 0;
  }
  if (res.tasks.length === 0) println(io.stdout, 'No tasks.');
  for (const t of res.tasks) {
    const ref = t.template ? `${t.template.namespace}/${t.template.name}@${t.template.version}` : '';
    println(io.stdout, `${t.taskId}  ${taskStateName(t.state).padEnd(20)} ${ref.padEnd(40)} ${t.createdAt?.toISOString() ?? ''}`);
  }
  if (res.nextPageToken) println(io.stdout, `More: --page-token ${res.nextPageToken}`);
  return 0;
}

/** `task watch --exit-status`: the exit code for the state a task ended in. */
export const WATCH_EXIT_CODES: ReadonlyMap<TaskState, number> = new Map([
  [TaskState.TASK_STATE_COMPLETE, 0],
  [TaskState.TASK_STATE_RESOLVED_MANUALLY, 0],
  [TaskState.TASK_STATE_ERROR, 2],
  [TaskState.TASK_STATE_CANCELLED, 3],
]);

async function watch(c: TaskerClients, taskId: string, values: Values, io: CliIo): Promise<number> {
  const stream = c.tasks.watchTask({ taskId, skipHistory: values['skip-history'] === true }, c.metadata());
  let last: TaskUpdate | null = null;
  let finalState: TaskState | null = null;
  await new Promise<void>((resolve, reject) => {
    stream.on('data', (u: TaskUpdate) => {
      last = u;
      if (u.update?.$case === 'taskStateChanged') finalState = u.update.value.toState;
      println(io.stdout, values.json ? JSON.stringify(ProtoTaskUpdate.toJSON(u)) : formatUpdate(u));
    });
    stream.on('error', (err: grpc.ServiceError) => reject(new RemoteCallError(err)));
    stream.on('end', () => resolve());
  });
  const final = (last as TaskUpdate | null)?.update;
  if (!values.json && final?.$case === 'taskStateChanged') println(io.stdout, `Task ${taskStateName(final.value.toState)}.`);
  if (values['exit-status'] !== true) return 0;
  let state = finalState as TaskState | null;
  if (state === null || !WATCH_EXIT_CODES.has(state)) {
    // With --skip-history a task already finished sends nothing: ask for its state.
    const res = await call(c.tasks.getTask.bind(c.tasks), { taskId, omitResults: true }, c.metadata());
    state = res.task?.state ?? TaskState.TASK_STATE_UNSPECIFIED;
  }
  const code = WATCH_EXIT_CODES.get(state);
  if (code !== undefined) return code;
  println(io.stderr, `tasker: the watch of task ${taskId} ended while the task is ${taskStateName(state)}`);
  return 1;
}

/** Runs one action against the server. */
async function runAction(action: string, rest: readonly string[], values: Values, io: CliIo): Promise<number> {
  const config = loadCliConfig(values.config, io);
  const c = createClients(connectionFor(config, values, 'client'));
  try {
    switch (action) {
      case 'create':
        return await create(c, rest, values, io);
      case 'get': {
        const res = await call(c.tasks.getTask.bind(c.tasks), { taskId: one(rest, 'task id'), omitResults: values['omit-results'] === true }, c.metadata());
        printTask(io, res.task, values.json === true);
        return 0;
      }
      case 'list':
        if (rest.length > 0) throw new UsageError(`task list takes no arguments, got ${rest.join(' ')}`);
        return await list(c, values, io);
      case 'watch':
        return await watch(c, one(rest, 'task id'), values, io);
      case 'cancel': {
        const res = await call(c.tasks.cancelTask.bind(c.tasks), { taskId: one(rest, 'task id'), reason: values.reason ?? '' }, c.metadata());
        if (!values.json) println(io.stdout, `Cancelled ${res.cancelledStepIds.length} step(s).`);
        printTask(io, res.task, values.json === true, { cancelled_step_ids: res.cancelledStepIds });
        return 0;
      }
      case 'retry': {
        const res = await call(c.tasks.retryTask.bind(c.tasks), { taskId: one(rest, 'task id'), reason: values.reason ?? '' }, c.metadata());
        printTask(io, res.task, values.json === true);
        return 0;
      }
      default:
        throw new UsageError(`unknown action "task ${action}"`);
    }
  } finally {
    c.close();
  }
}

/** The `task` command. */
export const taskCommand: Command = {
  name: 'task',
  summary: 'create, inspect, list, watch, cancel and retry tasks',
  usage: `Usage: tasker task create <namespace/name[@version]> [--context '{...}' | --context-file <file>] [options]
       tasker task get <task-id> [--omit-results]
       tasker task list [--state <state>]... [--namespace ns] [--name name] [--tag t] [--page-size n] [--page-token t]
       tasker task watch <task-id> [--skip-history] [--exit-status]
       tasker task cancel <task-id> [--reason text]
       tasker task retry <task-id> [--reason text]

watch prints every state change, progress report and result of the task as it
happens (its history first unless --skip-history) and exits when the task ends:
with 0, or with --exit-status by how the task ended: 0 complete or
resolved_manually, 2 error, 3 cancelled (1 failure, 64 bad command line as always).

Options:
      --context <json>          create: the task context (a JSON object)
      --context-file <file>     create: read the context from a file
      --priority <n>            create: dispatch priority (default 0)
      --tag <tag>               create: a label (repeatable); list: only tasks with it
      --idempotency-key <key>   create: repeat-safe key
      --correlation-id <id>     create: correlation id for logs and events
      --initiator <who>         create: who asked, for audit
      --reason <text>           create/cancel/retry: why, for audit
      --state <state>           list: only tasks in this state (repeatable)
      --skip-history            watch: live updates only, not the history before them
      --exit-status             watch: exit 0 complete/resolved_manually, 2 error, 3 cancelled
${CLIENT_USAGE}
${COMMON_USAGE}`,
  async run(args: readonly string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseCommandArgs(args, OPTIONS);
    if (values.help) {
      println(io.stdout, this.usage);
      return 0;
    }
    const [action, ...rest] = positionals;
    if (!action) throw new UsageError('expected "tasker task create|get|list|watch|cancel|retry"');
    return runAction(action, rest, values, io);
  },
};
