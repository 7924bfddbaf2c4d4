/**
 * TemplateService on the wire, on PostgreSQL and on PGlite: register (new, identical,
 * conflicting, invalid with the reason and violations in the trailers), get (latest
 * or exact version), list, validate; tokens and namespaces; template files loaded at
 * start (a bad file stops start-up naming it); and the `tasker template` CLI.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningTasker } from '../../src/app.js';
import { startTasker } from '../../src/app.js';
import { runCli } from '../../src/cli/run.js';
import type { TaskTemplate } from '../../src/gen/tasker/v1/template.js';
import { serverBackends } from '../support/databases.js';
import type { ServerTarget } from '../support/databases.js';
import { apiConfig, clients, protoTemplate, refusal, silent, TOKENS, unary } from './api-client.js';


const LIMITED_TOKEN = 'limited-client-token-0123';

describe.each(serverBackends)('TemplateService on $name', (backend) => {
  let target: ServerTarget;
  let tasker: RunningTasker;
  let api: ReturnType<typeof clients>;
  let dir: string;

  const register = (template: TaskTemplate, token: string | null = TOKENS.client) =>
    unary(api.templates.registerTemplate.bind(api.templates), { template }, token);
  const get = (name: string, version = '', namespace = 'e2e') =>
    unary(api.templates.getTemplate.bind(api.templates), { template: { namespace, name, version } });
  const list = (req: { namespace?: string; name?: string; allVersions?: boolean }, token: string = TOKENS.client) =>
    unary(api.templates.listTemplates.bind(api.templates), { namespace: '', name: '', allVersions: false, ...req }, token);
  const validate = (template: TaskTemplate) => unary(api.templates.validateTemplate.bind(api.templates), { template });

  beforeAll(async () => {
    target = await backend.open();
    dir = await mkdtemp(join(tmpdir(), 'tasker-templates-'));
    await writeFile(
      join(dir, 'loaded.yaml'),
      'namespace: files\nname: loaded\nversion: "1.0.0"\nsteps:\n  - name: only\n    handler: files.only\n',
    );
    tasker = await startTasker(
      apiConfig(target.url, {
        templates: { register_on_start: true, dirs: [dir] },
        auth: {
          enabled: true,
          tokens: [
            { name: 'client', token: TOKENS.client, roles: ['client'] },
            { name: 'worker', token: TOKENS.worker, roles: ['worker'] },
            { name: 'limited', token: LIMITED_TOKEN, roles: ['client'], namespaces: ['files'] },
          ],
        },
      }),
      silent,
    );
    api = clients(tasker.address);
  });

  afterAll(async () => {
    api?.close();
    await tasker?.stop();
    await target?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('registers a template, fills in the defaults, and treats an identical registration as a no-op', async () => {
    const template = protoTemplate('orders', [['charge'], ['ship', ['charge']]]);
    const first = await register(template);
    expect(first.created).toBe(true);
    expect(first.template?.createdAt).toBeInstanceOf(Date);
    expect(first.template?.bodyHash).toMatch(/^[0-9a-f]{64}$/);
    expect(first.template?.steps.map((s) => [s.name, s.dependsOn])).toEqual([['charge', []], ['ship', ['charge']]]);
    // max_attempts 0 and backoff UNSPECIFIED mean "default": the server's 3 attempts, exponential.
    expect(first.template?.steps[0]?.retry?.maxAttempts).toBe(3);

    const again = await register(template);
    expect(again.created).toBe(false);
    expect(again.template?.bodyHash).toBe(first.template?.bodyHash);
    expect(again.template?.createdAt?.getTime()).toBe(first.template?.createdAt?.getTime());
  });

  it('refuses another body for an existing version with ALREADY_EXISTS', async () => {
    await register(protoTemplate('conflicting', [['a']]));
    const failure = await refusal(register(protoTemplate('conflicting', [['a'], ['b', ['a']]])));
    expect(failure.code).toBe(grpc.status.ALREADY_EXISTS);
    expect(failure.reason).toBe('TEMPLATE_VERSION_CONFLICT');
  });

  it('refuses a cyclic template with TEMPLATE_INVALID and the violations in the trailers, storing nothing', async () => {
    const cyclic = protoTemplate('cyclic', [['a', ['c']], ['b', ['a']], ['c', ['b']]]);
    const failure = await refusal(register(cyclic));
    expect(failure.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(failure.reason).toBe('TEMPLATE_INVALID');
    const violations = failure.details['violations'] as Array<{ path: string; message: string }>;
    expect(violations.length).toBeGreaterThan(0);
    expect(violations.some((v) => /cycle/.test(v.message))).toBe(true);

    const missing = await refusal(get('cyclic'));
    expect(missing.code).toBe(grpc.status.NOT_FOUND);
    expect(missing.reason).toBe('TEMPLATE_NOT_FOUND');
  });

  it('validates without storing: valid, or every violation naming the step', async () => {
    expect(await validate(protoTemplate('never-stored', [['a']]))).toEqual({ valid: true, violations: [] });
    const result = await validate(protoTemplate('never-stored', [['a', ['ghost']], ['a']]));
    expect(result.valid).toBe(false);
    const text = result.violations.map((v) => `${v.path} ${v.message}`).join('\n');
    expect(text).toMatch(/ghost/);
    expect(text).toMatch(/duplicate|unique|twice/i);
    expect((await refusal(get('never-stored'))).code).toBe(grpc.status.NOT_FOUND);
  });

  it('gets the highest release for an empty version, or the exact version asked for', async () => {
    for (const version of ['1.2.0', '1.10.0', '1.9.0', '2.0.0-rc.1']) {
      await register(protoTemplate('versioned', [['a']], { version, description: `v${version}` }));
    }
    expect((await get('versioned')).template?.version).toBe('1.10.0');
    expect((await get('versioned', '1.9.0')).template?.description).toBe('v1.9.0');
    expect((await refusal(get('versioned', '9.9.9'))).reason).toBe('TEMPLATE_NOT_FOUND');
  });

  it('lists the latest version of each template, or every version, filtered', async () => {
    const latest = await list({ namespace: 'e2e', name: 'versioned' });
    expect(latest.templates.map((t) => t.version)).toEqual(['1.10.0']);
    const all = await list({ namespace: 'e2e', name: 'versioned', allVersions: true });
    expect(all.templates.map((t) => t.version).sort()).toEqual(['1.10.0', '1.2.0', '1.9.0', '2.0.0-rc.1']);
    const everything = await list({});
    expect(everything.templates.map((t) => `${t.namespace}/${t.name}`)).toEqual(expect.arrayContaining(['e2e/orders', 'files/loaded']));
  });

  it('applies the server environment overrides when storing', async () => {
    const template = protoTemplate('overridden', [['a'], ['b', ['a']]], {
      environments: { test: { steps: [{ name: 'b', handler: 'sandbox.b', timeoutMs: 2500 }] } },
    });
    const stored = (await register(template)).template;
    expect(stored?.steps.map((s) => [s.name, s.handler, s.timeoutMs])).toEqual([
      ['a', 'overridden.work', 0],
      ['b', 'sandbox.b', 2500],
    ]);
    expect(stored?.environments['test']?.steps[0]?.name).toBe('b');
  });

  it('loaded the template files at start', async () => {
    const loaded = await get('loaded', '', 'files');
    expect(loaded.template?.steps.map((s) => s.handler)).toEqual(['files.only']);
  });

  it('checks tokens, roles and namespaces', async () => {
    const template = protoTemplate('guarded', [['a']]);
    expect((await refusal(register(template, null))).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await refusal(register(template, 'not-a-configured-token'))).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((await refusal(register(template, TOKENS.worker))).code).toBe(grpc.status.PERMISSION_DENIED);
    const wrongNamespace = await refusal(register(template, LIMITED_TOKEN));
    expect(wrongNamespace.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(wrongNamespace.reason).toBe('PERMISSION_DENIED');
    // A namespace-limited token lists only what it may see.
    const visible = await list({}, LIMITED_TOKEN);
    expect(new Set(visible.templates.map((t) => t.namespace))).toEqual(new Set(['files']));
  });

  it('serves the tasker template CLI: local validate, register and list', async () => {
    const file = join(dir, 'cli.yaml');
    await writeFile(file, 'namespace: e2e\nname: from_cli\nversion: "0.1.0"\nsteps:\n  - name: x\n    handler: cli.x\n');
    const bad = join(dir, 'bad.txt');
    await writeFile(bad, 'namespace: e2e\nname: bad\nversion: "1"\nsteps:\n  - name: x\n    handler: h\n    depends_on: [y]\n');
    const cli = async (...args: string[]) => {
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      let out = '';
      let err = '';
      stdout.on('data', (d: Buffer) => (out += d.toString()));
      stderr.on('data', (d: Buffer) => (err += d.toString()));
      const code = await runCli(args, { stdout, stderr, env: { TASKER_ENV: 'test' } });
      return { code, out, err };
    };
    const valid = await cli('template', 'validate', file);
    expect(valid).toMatchObject({ code: 0 });
    expect(valid.out).toContain('valid: e2e/from_cli@0.1.0 (1 step)');
    const invalid = await cli('template', 'validate', bad);
    expect(invalid.code).toBe(1);
    expect(invalid.err).toContain('bad.txt');
    expect(invalid.err).toMatch(/y/);

    const remote = ['--address', tasker.address, '--token', TOKENS.client];
    const registered = await cli('template', 'register', file, ...remote);
    expect(registered.code).toBe(0);
    expect(registered.out).toContain('registered: e2e/from_cli@0.1.0');
    const listed = await cli('template', 'list', '--namespace', 'e2e', '--name', 'from_cli', '--json', ...remote);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.out.trim())).toMatchObject({ namespace: 'e2e', name: 'from_cli', version: '0.1.0' });
    const denied = await cli('template', 'list', '--address', tasker.address, '--token', 'wrong-token-000000');
    expect(denied.code).toBe(1);
    expect(denied.err).toContain('UNAUTHENTICATED');
  });
});

describe('template files at start', () => {
  it('stop start-up with a message naming the bad file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tasker-bad-templates-'));
    try {
      await writeFile(join(dir, 'broken.yaml'), 'namespace: files\nname: broken\nversion: "1"\nsteps:\n  - name: a\n    handler: h\n    depends_on: [a]\n');
      const start = startTasker(apiConfig(null, { templates: { register_on_start: true, dirs: [dir] } }), silent);
      await expect(start).rejects.toThrow(/broken\.yaml/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
