/**
 * `engine.default_retry` from the configuration completes every template the same way,
 * whichever way it arrives: a template file loaded at start, TemplateService.RegisterTemplate,
 * and the templates a worker ships in its Hello. Each retry field a template leaves out
 * takes the configured default; the ones it gives are kept; tasks run with the result.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningTasker } from '../../src/app.js';
import { startTasker } from '../../src/app.js';
import { Backoff } from '../../src/gen/tasker/v1/template.js';
import type { TaskTemplate } from '../../src/gen/tasker/v1/template.js';
import { serverBackends } from '../support/databases.js';
import type { ServerTarget } from '../support/databases.js';
import { apiConfig, clients, eventually, protoTemplate, silent, unary } from './api-client.js';
import { RawWorker } from './raw-worker.js';


/** The configured default, as GetTemplate shows a step that left every retry field out. */
const CONFIGURED = { maxAttempts: 6, backoff: Backoff.BACKOFF_LINEAR, baseMs: 250, maxMs: 4000, jitter: 0 };
/** A step that set only max_attempts: 2. */
const PARTIAL = { ...CONFIGURED, maxAttempts: 2 };

const FILE = [
  'namespace: defaults',
  'name: from-file',
  'version: "1.0.0"',
  'steps:',
  '  - name: bare',
  '    handler: from-file.work',
  '  - name: partial',
  '    handler: from-file.work',
  '    retry:',
  '      max_attempts: 2',
].join('\n');

/** A proto template with a step leaving retry unset and one setting only max_attempts. */
function wireTemplate(name: string): TaskTemplate {
  const t = protoTemplate(name, [['bare'], ['partial']], { namespace: 'defaults' });
  return {
    ...t,
    steps: t.steps.map((s) => ({
      ...s,
      retry: s.name === 'partial' ? { maxAttempts: 2, backoff: Backoff.BACKOFF_UNSPECIFIED } : undefined,
    })),
  };
}

describe.each(serverBackends)('template retry defaults from the configuration on $name', (backend) => {
  let target: ServerTarget;
  let tasker: RunningTasker;
  let api: ReturnType<typeof clients>;
  let dir: string;
  const workers: RawWorker[] = [];

  const retries = async (name: string) => {
    const res = await unary(api.templates.getTemplate.bind(api.templates), { template: { namespace: 'defaults', name, version: '' } });
    return Object.fromEntries(res.template!.steps.map((s) => [s.name, s.retry]));
  };

  beforeAll(async () => {
    target = await backend.open();
    dir = await mkdtemp(join(tmpdir(), 'tasker-template-defaults-'));
    await writeFile(join(dir, 'from-file.yaml'), FILE);
    tasker = await startTasker(
      apiConfig(target.url, {
        engine: {
          poll_interval_ms: 200,
          default_retry: { max_attempts: 6, backoff: 'linear', base_ms: 250, max_ms: 4000, jitter: 0 },
        },
        templates: { register_on_start: true, dirs: [dir] },
      }),
      silent,
    );
    api = clients(tasker.address);
  });

  afterAll(async () => {
    for (const w of workers) w.close();
    api?.close();
    await tasker?.stop();
    await target?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('completes a template file loaded at start, and its tasks run with the result', async () => {
    expect(await retries('from-file')).toEqual({ bare: CONFIGURED, partial: PARTIAL });
    const created = await unary(api.tasks.createTask.bind(api.tasks), {
      template: { namespace: 'defaults', name: 'from-file', version: '' },
      context: {},
      priority: 0,
      tags: [],
      initiator: '',
      sourceSystem: '',
      reason: '',
      correlationId: '',
      idempotencyKey: '',
    });
    expect(created.task!.steps.map((s) => [s.name, s.maxAttempts])).toEqual([
      ['bare', 6],
      ['partial', 2],
    ]);
  });

  it('completes a template registered with RegisterTemplate the same way', async () => {
    await unary(api.templates.registerTemplate.bind(api.templates), { template: wireTemplate('registered') });
    expect(await retries('registered')).toEqual({ bare: CONFIGURED, partial: PARTIAL });
  });

  it("completes a template a worker ships in Hello the same way", async () => {
    const worker = new RawWorker(tasker.address);
    workers.push(worker);
    await worker.hello({ workerName: 'shipper', handlers: ['shipped.work'], templates: [wireTemplate('shipped')] });
    const shipped = await eventually(
      () => retries('shipped').catch(() => null),
      (r) => r !== null,
      'the shipped template to be registered',
    );
    expect(shipped).toEqual({ bare: CONFIGURED, partial: PARTIAL });
  });
});
