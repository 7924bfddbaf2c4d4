/** `tasker template validate|register|list`: check template files locally, store them, list stored ones. */
import { readFile } from 'node:fs/promises';
import { ValidationError } from '../../domain/errors.js';
import { parseTemplateYaml } from '../../domain/template-document.js';
import type { TemplateDefaults } from '../../domain/template-document.js';
import type { TaskTemplate } from '../../domain/template.js';
import { templateKey } from '../../domain/template.js';
import { TaskTemplate as ProtoTaskTemplate } from '../../gen/tasker/v1/template.js';
import { templateToProto } from '../../grpc/mappers/template.js';
import type { Config } from '../../config/schema.js';
import { call, CLIENT_OPTIONS, CLIENT_USAGE, connectionFor, createClients, violationLines } from '../client.js';
import type { CliIo, Command } from '../command.js';
import { COMMON_USAGE, loadCliConfig, parseCommandArgs, println, UsageError } from '../command.js';

const OPTIONS = {
  ...CLIENT_OPTIONS,
  namespace: { type: 'string' },
  name: { type: 'string' },
  'all-versions': { type: 'boolean' },
} as const;

function defaultsOf(config: Config): TemplateDefaults {
  const r = config.engine.default_retry;
  return { retry: { maxAttempts: r.max_attempts, backoff: r.backoff, baseMs: r.base_ms, maxMs: r.max_ms, jitter: r.jitter } };
}

/** Reads and parses one template file; a ValidationError keeps its violations and names the file. */
async function parseFile(file: string, config: Config): Promise<TaskTemplate> {
  let source: string;
  try {
    source = await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`);
  }
  try {
    return parseTemplateYaml(source, defaultsOf(config));
  } catch (err) {
    if (err instanceof ValidationError) throw new ValidationError(`${file}: ${err.message}`, err.violations, err.code);
    throw err;
  }
}

function printViolations(io: CliIo, err: ValidationError): void {
  println(io.stderr, `tasker: ${err.message}`);
  for (const line of violationLines(err.message, err.violations)) println(io.stderr, line);
}

function describe(t: TaskTemplate): string {
  return `${templateKey(t)} (${t.steps.length} step${t.steps.length === 1 ? '' : 's'})`;
}

type Values = ReturnType<typeof parseCommandArgs<typeof OPTIONS>>['values'];

async function validate(files: readonly string[], values: Values, io: CliIo): Promise<number> {
  if (files.length === 0) throw new UsageError('template validate needs at least one file');
  const config = loadCliConfig(values.config, io);
  let failed = 0;
  for (const file of files) {
    try {
      const template = await parseFile(file, config);
      if (values.json) println(io.stdout, JSON.stringify({ file, valid: true, template: templateKey(template) }));
      else println(io.stdout, `${file}: valid: ${describe(template)}`);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      failed += 1;
      if (values.json) println(io.stdout, JSON.stringify({ file, valid: false, violations: err.violations }));
      else printViolations(io, err);
    }
  }
  return failed === 0 ? 0 : 1;
}

async function register(files: readonly string[], values: Values, io: CliIo): Promise<number> {
  if (files.length === 0) throw new UsageError('template register needs at least one file');
  const config = loadCliConfig(values.config, io);
  const templates = [];
  for (const file of files) templates.push({ file, template: await parseFile(file, config) });
  const clients = createClients(connectionFor(config, values, 'client'));
  try {
    for (const { file, template } of templates) {
      const res = await call(clients.templates.registerTemplate.bind(clients.templates), { template: templateToProto(template) }, clients.metadata());
      if (values.json) println(io.stdout, JSON.stringify({ file, created: res.created, template: res.template ? ProtoTaskTemplate.toJSON(res.template) : null }));
      else println(io.stdout, `${file}: ${res.created ? 'registered' : 'already registered (identical)'}: ${describe(template)}`);
    }
    return 0;
  } finally {
    clients.close();
  }
}

async function list(values: Values, io: CliIo): Promise<number> {
  const config = loadCliConfig(values.config, io);
  const clients = createClients(connectionFor(config, values, 'client'));
  try {
    const res = await call(
      clients.templates.listTemplates.bind(clients.templates),
      { namespace: values.namespace ?? '', name: values.name ?? '', allVersions: values['all-versions'] === true },
      clients.metadata(),
    );
    if (values.json) {
      for (const t of res.templates) println(io.stdout, JSON.stringify(ProtoTaskTemplate.toJSON(t)));
      return 0;
    }
    if (res.templates.length === 0) println(io.stdout, 'No templates.');
    for (const t of res.templates) {
      const at = t.createdAt ? t.createdAt.toISOString() : '';
      const steps = `${String(t.steps.length).padStart(3)} step${t.steps.length === 1 ? ' ' : 's'}`;
      println(io.stdout, `${`${t.namespace}/${t.name}@${t.version}`.padEnd(48)} ${steps}  ${at}  ${t.description}`.trimEnd());
    }
    return 0;
  } finally {
    clients.close();
  }
}

/** The `template` command. */
export const templateCommand: Command = {
  name: 'template',
  summary: 'validate template files, register them, list stored templates',
  usage: `Usage: tasker template validate <file>...
       tasker template register <file>... [options]
       tasker template list [--namespace ns] [--name name] [--all-versions] [options]

validate  checks template YAML files locally (no server), exactly as the server
          would, and prints every violation; exit 1 if any file is invalid.
register  sends the files to the server (TemplateService.RegisterTemplate);
          re-registering an identical version is a no-op, a different body for
          an existing version is refused.
list      shows the newest version of each stored template (every version with
          --all-versions).

Options:
      --namespace <ns>  list: only this namespace
      --name <name>     list: only this template name
      --all-versions    list: every stored version
${CLIENT_USAGE}
${COMMON_USAGE}`,
  async run(args: readonly string[], io: CliIo): Promise<number> {
    const { values, positionals } = parseCommandArgs(args, OPTIONS);
    if (values.help) {
      println(io.stdout, this.usage);
      return 0;
    }
    const [action, ...rest] = positionals;
    switch (action) {
      case 'validate':
        return validate(rest, values, io);
      case 'register':
        return register(rest, values, io);
      case 'list':
        if (rest.length > 0) throw new UsageError(`template list takes no arguments, got ${rest.join(' ')}`);
        return list(values, io);
      default:
        throw new UsageError(`expected "tasker template validate|register|list"${action ? `, got "${action}"` : ''}`);
    }
  },
};
