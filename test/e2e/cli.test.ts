/**
 * The `tasker` CLI as a child process against a real server on PostgreSQL: template
 * validate (locally; a cycle is named and exits 1), register and list; task create
 * from --context and --context-file (a context the schema refuses is one clear line,
 * exit 1, and creates nothing), get and list with filters and pages; `--json` output
 * that parses; a wrong token or an unreachable server as exit 1 with one line and no
 * stack trace; a bad command line as exit 64. Steps are never run here (no worker):
 * see cli-tasks.test.ts for watch, cancel, step repairs and workers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKENS } from './api-client.js';
import type { CliServer } from './cli-harness.js';
import { expectFailure, expectOk, json, jsonLines, lines, startCliServer, tasker } from './cli-harness.js';

const ORDERS = `namespace: cli
name: orders
version: 1.0.0
description: Reserve, charge, ship.
context_schema:
  type: object
  required: [order_id]
  properties:
    order_id: { type: integer, minimum: 1 }
steps:
  - name: reserve
    handler: cli.reserve
  - name: charge
    handler: cli.charge
    depends_on: [reserve]
  - name: ship
    handler: cli.ship
    depends_on: [charge]
`;

const REFUNDS = `namespace: cli
name: refunds
version: 1.0.0
identity_strategy: always_unique
steps:
  - name: refund
    handler: cli.refund
`;

const CYCLIC = `namespace: cli
name: cyclic
version: 1.0.0
steps:
  - name: a
    handler: cli.a
    depends_on: [c]
  - name: b
    handler: cli.b
    depends_on: [a]
  - name: c
    handler: cli.c
    depends_on: [b]
`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface JsonTask {
  taskId: string;
  state: string;
  context: unknown;
  tags?: string[];
  priority?: number;
  steps: Array<{ name: string; state: string }>;
}

describe('tasker CLI: templates and tasks against a real server (PostgreSQL)', () => {
  let server: CliServer;
  let files: { orders: string; refunds: string; cyclic: string };
  /** `--address` and the client token. */
  let client: string[];
  /** Task ids created by the create test, read by the later ones. */
  const created: { rush: string; fromFile: string } = { rush: '', fromFile: '' };

  const listIds = async (...args: string[]): Promise<string[]> => {
    const run = await tasker('task', 'list', '--json', ...args, ...client);
    expectOk(run);
    return (json(run)['tasks'] as JsonTask[]).map((t) => t.taskId);
  };

  beforeAll(async () => {
    server = await startCliServer();
    client = server.remote(TOKENS.client);
    files = {
      orders: await server.file('orders.yaml', ORDERS),
      refunds: await server.file('refunds.yaml', REFUNDS),
      cyclic: await server.file('cyclic.yaml', CYCLIC),
    };
  });

  afterAll(async () => {
    await server?.close();
  });

  it('validates template files locally, naming a cycle and exiting 1', async () => {
    const good = await tasker('template', 'validate', files.orders);
    expectOk(good);
    expect(good.stdout).toBe(`${files.orders}: valid: cli/orders@1.0.0 (3 steps)\n`);

    const cyclic = await tasker('template', 'validate', files.cyclic);
    expect(cyclic.code).toBe(1);
    expect(cyclic.stdout).toBe('');
    expect(lines(cyclic.stderr)).toEqual([
      `tasker: ${files.cyclic}: template cli/cyclic@1.0.0 is invalid: /steps/0/depends_on: cycle: a -> b -> c -> a`,
    ]);

    const both = await tasker('template', 'validate', '--json', files.orders, files.cyclic);
    expect(both.code).toBe(1);
    expect(jsonLines(both)).toEqual([
      { file: files.orders, valid: true, template: 'cli/orders@1.0.0' },
      { file: files.cyclic, valid: false, violations: [{ path: '/steps/0/depends_on', message: 'cycle: a -> b -> c -> a' }] },
    ]);
  });

  it('registers templates (identical again is a no-op, a changed body is refused) and lists them', async () => {
    const registered = await tasker('template', 'register', files.orders, files.refunds, ...client);
    expectOk(registered);
    expect(lines(registered.stdout)).toEqual([
      `${files.orders}: registered: cli/orders@1.0.0 (3 steps)`,
      `${files.refunds}: registered: cli/refunds@1.0.0 (1 step)`,
    ]);

    const again = await tasker('template', 'register', files.orders, '--json', ...client);
    expectOk(again);
    expect(json(again)).toMatchObject({ file: files.orders, created: false, template: { namespace: 'cli', name: 'orders', version: '1.0.0' } });

    const changed = await server.file('orders-changed.yaml', ORDERS.replace('Reserve, charge, ship.', 'Something else.'));
    const conflict = await tasker('template', 'register', changed, ...client);
    expectFailure(conflict, 1, /ALREADY_EXISTS TEMPLATE_VERSION_CONFLICT: template cli\/orders@1\.0\.0 is already registered/);

    const listed = await tasker('template', 'list', '--namespace', 'cli', ...client);
    expectOk(listed);
    const rows = lines(listed.stdout);
    expect(rows).toHaveLength(2);
    expect(rows.find((r) => r.startsWith('cli/orders@1.0.0'))).toMatch(/\b3 steps\b.*Reserve, charge, ship\.$/);
    expect(rows.find((r) => r.startsWith('cli/refunds@1.0.0'))).toMatch(/ 1 step {3}\d{4}-/);

    const asJson = await tasker('template', 'list', '--namespace', 'cli', '--name', 'orders', '--json', ...client);
    expectOk(asJson);
    const [orders, ...others] = jsonLines(asJson);
    expect(others).toEqual([]);
    expect(orders).toMatchObject({ namespace: 'cli', name: 'orders', version: '1.0.0', description: 'Reserve, charge, ship.' });
    expect((orders?.['steps'] as Array<{ name: string }>).map((s) => s.name)).toEqual(['reserve', 'charge', 'ship']);

    const none = await tasker('template', 'list', '--namespace', 'nowhere', ...client);
    expectOk(none);
    expect(none.stdout).toBe('No templates.\n');
  });

  it('creates tasks from --context and --context-file; a context the schema refuses creates nothing', async () => {
    const rush = await tasker('task', 'create', 'cli/orders', '--context', '{"order_id": 7}', '--tag', 'rush', '--priority', '5', ...client);
    expectOk(rush);
    const [head, title, ...rest] = lines(rush.stdout);
    expect(head).toBe('Created:');
    const match = /^task (\S+) {2}cli\/orders@1\.0\.0 {2}pending$/.exec(title ?? '');
    expect(match?.[1]).toMatch(UUID);
    created.rush = match?.[1] ?? '';
    expect(rest).toContain('  tags: rush');

    const contextFile = await server.file('context.json', JSON.stringify({ order_id: 8, note: 'from a file' }));
    const fromFile = await tasker('task', 'create', 'cli/orders@1.0.0', '--context-file', contextFile, '--idempotency-key', 'order-8', '--json', ...client);
    expectOk(fromFile);
    const doc = json(fromFile) as { created: boolean; task: JsonTask };
    expect(doc.created).toBe(true);
    expect(doc.task).toMatchObject({ state: 'TASK_STATE_PENDING', context: { order_id: 8, note: 'from a file' } });
    expect(doc.task.steps.map((s) => [s.name, s.state])).toEqual([
      ['reserve', 'STEP_STATE_PENDING'],
      ['charge', 'STEP_STATE_PENDING'],
      ['ship', 'STEP_STATE_PENDING'],
    ]);
    created.fromFile = doc.task.taskId;

    const repeated = await tasker('task', 'create', 'cli/orders', '--context-file', contextFile, '--idempotency-key', 'order-8', ...client);
    expectOk(repeated);
    expect(lines(repeated.stdout).slice(0, 2)).toEqual(['An identical task already exists:', `task ${created.fromFile}  cli/orders@1.0.0  pending`]);

    const refused = await tasker('task', 'create', 'cli/orders', '--context', '{"order_id": "seven"}', ...client);
    expectFailure(refused, 1, /^tasker: INVALID_ARGUMENT CONTEXT_INVALID: task context is invalid: \/order_id: must be integer$/);
    expect(refused.stdout).toBe('');
    const missing = await tasker('task', 'create', 'cli/orders', '--context', '{}', ...client);
    expectFailure(missing, 1, /CONTEXT_INVALID: .*order_id/);
    expect(await listIds('--name', 'orders')).toEqual([created.fromFile, created.rush]);

    expectFailure(await tasker('task', 'create', 'cli/orders', '--context', '{order_id: 9}', ...client), 64, /the task context is not valid JSON/);
    expectFailure(await tasker('task', 'create', 'cli/orders', '--context', '[9]', ...client), 64, /must be a JSON object/);
    const noFile = await tasker('task', 'create', 'cli/orders', '--context-file', `${contextFile}.missing`, ...client);
    expectFailure(noFile, 64, /cannot read .*context\.json\.missing/);
    expect(await listIds('--name', 'orders')).toEqual([created.fromFile, created.rush]);
  });

  it('gets a task with its steps, as text and as JSON', async () => {
    const text = await tasker('task', 'get', created.rush, ...client);
    expectOk(text);
    const out = lines(text.stdout);
    expect(out[0]).toBe(`task ${created.rush}  cli/orders@1.0.0  pending`);
    expect(out).toContain('  tags: rush');
    expect(out.filter((l) => /^ {2}(reserve|charge|ship) +pending +0\/3 {2}[0-9a-f-]{36}$/.test(l))).toHaveLength(3);

    const doc = json(await tasker('task', 'get', created.rush, '--json', '--omit-results', ...client)) as { task: JsonTask };
    expect(doc.task).toMatchObject({ taskId: created.rush, state: 'TASK_STATE_PENDING', context: { order_id: 7 }, tags: ['rush'], priority: 5 });

    const unknown = await tasker('task', 'get', '00000000-0000-7000-8000-000000000000', ...client);
    expectFailure(unknown, 1, /^tasker: NOT_FOUND TASK_NOT_FOUND: task 00000000-0000-7000-8000-000000000000 not found$/);
  });

  it('lists tasks newest first, filtered by name, namespace, state and tag, one page at a time', async () => {
    const refund = await tasker('task', 'create', 'cli/refunds', '--json', ...client);
    expectOk(refund);
    const refundId = (json(refund) as { task: JsonTask }).task.taskId;

    const all = await tasker('task', 'list', ...client);
    expectOk(all);
    const rows = lines(all.stdout);
    expect(rows.map((r) => r.split(' ')[0])).toEqual([refundId, created.fromFile, created.rush]);
    expect(rows[0]).toMatch(/^\S+ {2}pending +cli\/refunds@1\.0\.0 +\d{4}-\d\d-\d\dT/);

    const filtered = await Promise.all([
      listIds('--name', 'refunds'),
      listIds('--namespace', 'cli', '--state', 'pending'),
      listIds('--state', 'complete', '--state', 'error'),
      listIds('--tag', 'rush'),
      listIds('--namespace', 'elsewhere'),
    ]);
    expect(filtered).toEqual([[refundId], [refundId, created.fromFile, created.rush], [], [created.rush], []]);

    const first = await tasker('task', 'list', '--name', 'orders', '--page-size', '1', ...client);
    expectOk(first);
    const [row, more] = lines(first.stdout);
    expect(row?.split(' ')[0]).toBe(created.fromFile);
    const token = /^More: --page-token (\S+)$/.exec(more ?? '')?.[1];
    expect(token).toBeDefined();
    const second = await tasker('task', 'list', '--name', 'orders', '--page-size', '1', '--page-token', token ?? '', '--json', ...client);
    expectOk(second);
    const page = json(second) as { tasks: JsonTask[]; next_page_token: string };
    expect(page.tasks.map((t) => t.taskId)).toEqual([created.rush]);
    expect(page.next_page_token).toBe('');

    const none = await tasker('task', 'list', '--state', 'cancelled', ...client);
    expectOk(none);
    expect(none.stdout).toBe('No tasks.\n');
  });

  it('answers a wrong token or an unreachable server with exit 1 and one line, no stack trace', async () => {
    const [wrongToken, wrongRegister, unreachable] = await Promise.all([
      tasker('task', 'list', ...server.remote('not-a-configured-token')),
      tasker('template', 'register', files.refunds, ...server.remote('not-a-configured-token')),
      tasker('task', 'get', created.rush, '--address', '127.0.0.1:1', '--token', TOKENS.client),
    ]);
    expectFailure(wrongToken, 1, /^tasker: UNAUTHENTICATED /);
    expect(wrongToken.stdout).toBe('');
    expectFailure(wrongRegister, 1, /^tasker: UNAUTHENTICATED /);
    expectFailure(unreachable, 1, /^tasker: UNAVAILABLE .*is the server running\? see --address/);
  });

  it('exits 64 on a bad command line, pointing to --help, and 0 with usage for --help', async () => {
    const bad: Array<[string[], RegExp]> = [
      [['frobnicate'], /unknown command "frobnicate"/],
      [['template'], /expected "tasker template validate\|register\|list"/],
      [['template', 'validate'], /template validate needs at least one file/],
      [['task', 'list', '--bogus'], /Unknown option '--bogus'/],
      [['task', 'get'], /expected one task id, got 0/],
      [['task', 'list', '--state', 'finished'], /unknown state finished \(states: pending, /],
      [['task', 'list', '--tag', 'a', '--tag', 'b'], /task list filters on one --tag/],
      [['task', 'create', 'orders'], /expected a template as namespace\/name\[@version\], got orders/],
      [['task', 'create', 'cli/orders', '--priority', 'high'], /--priority must be an integer, got high/],
      [['task', 'create', 'cli/orders', '--context', '{}', '--context-file', files.orders], /give --context or --context-file, not both/],
      [['step', 'retry'], /expected "tasker step retry\|resolve\|complete <step-id>"/],
      [['step', 'complete', 'some-step', '--result', '{oops'], /--result is not valid JSON/],
      [['workers', 'extra'], /workers takes no arguments, got extra/],
    ];
    const runs = await Promise.all(bad.map(([args]) => tasker(...args, ...client)));
    runs.forEach((run, i) => expectFailure(run, 64, (bad[i] as [string[], RegExp])[1]));

    const help = await tasker('task', '--help');
    expectOk(help);
    expect(help.stdout).toMatch(/^Usage: tasker task create <namespace\/name\[@version\]>/);
    const top = await tasker('--help');
    expectOk(top);
    expect(top.stdout).toContain('Exit codes: 0 ok, 1 failure, 64 bad command line, 78 invalid configuration.');
  });
});
