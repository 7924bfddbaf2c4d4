import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { compileContextSchema } from '../../src/domain/context-schema.js';
import { roots, topologicalOrder } from '../../src/domain/dag.js';
import { DEFAULT_RETRY_POLICY } from '../../src/domain/retry-policy.js';
import type { TaskTemplate } from '../../src/domain/template.js';
import { applyEnvironment, parseTemplateYaml, templateBodyHash } from '../../src/domain/template-document.js';
import { validateTemplate } from '../../src/domain/template-validation.js';

const ROOT = fileURLToPath(new URL('../../config/templates/', import.meta.url));

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return yamlFiles(path);
    return /\.ya?ml$/.test(e.name) ? [path] : [];
  });
}

const files = yamlFiles(ROOT).map((path) => ({ file: relative(ROOT, path), source: readFileSync(path, 'utf8') }));
const load = (source: string) => parseTemplateYaml(source, { retry: DEFAULT_RETRY_POLICY });

describe('config/templates', () => {
  it('holds the expected example templates', () => {
    expect(files.map((f) => f.file).sort()).toEqual(
      expect.arrayContaining([
        'ecommerce/order_fulfillment.yaml',
        'examples/diamond_workflow.yaml',
        'examples/linear_workflow.yaml',
        'examples/mixed_dag.yaml',
        'examples/parallel_merge.yaml',
        'examples/tree_workflow.yaml',
      ]),
    );
  });

  describe.each(files)('$file', ({ file, source }) => {
    const t = load(source);

    it('parses, validates and lives at <namespace>/<name>.yaml', () => {
      expect(validateTemplate(t)).toEqual([]);
      expect(file.replace(/\.ya?ml$/, '')).toBe(`${t.namespace}/${t.name}`);
      expect(t.description).not.toBe('');
    });

    it('has a context schema that compiles', () => {
      expect(t.contextSchema).not.toBeNull();
      expect(() => compileContextSchema(t.contextSchema)).not.toThrow();
    });

    it('sorts topologically and applies each of its environments', () => {
      expect(topologicalOrder(t.steps)).toHaveLength(t.steps.length);
      for (const env of Object.keys(t.environments)) expect(validateTemplate(applyEnvironment(t, env))).toEqual([]);
    });

    it('has a stable body hash', () => {
      expect(templateBodyHash(load(source))).toBe(templateBodyHash(t));
    });
  });
});

/**
 * The demo math handlers exactly as the examples' header comments describe them, run
 * in topological order, so the "Expected:" line of each file is checked.
 */
function runMath(t: TaskTemplate, context: { even_number: number }): Map<string, number> {
  const values = new Map<string, number>();
  const single = (config: Record<string, unknown>): number =>
    typeof config['input'] === 'string' ? values.get(config['input'])! : context.even_number;
  const many = (config: Record<string, unknown>): number[] => (config['inputs'] as string[]).map((n) => values.get(n)!);
  for (const name of topologicalOrder(t.steps)) {
    const s = t.steps.find((x) => x.name === name)!;
    const c = s.handlerConfig as Record<string, unknown>;
    const ops: Record<string, () => number> = {
      'examples.math.square': () => single(c) ** 2,
      'examples.math.double': () => single(c) * 2,
      'examples.math.halve': () => single(c) / 2,
      'examples.math.sum': () => many(c).reduce((a, b) => a + b, 0),
      'examples.math.product': () => many(c).reduce((a, b) => a * b, 1),
    };
    const op = ops[s.handler];
    if (op === undefined) throw new Error(`unknown demo handler ${s.handler}`);
    const inputs = typeof c['input'] === 'string' ? [c['input']] : Array.isArray(c['inputs']) ? (c['inputs'] as string[]) : [];
    // Every input a handler reads must be one of its dependencies.
    for (const input of inputs) expect(s.dependsOn).toContain(input);
    values.set(name, op());
  }
  return values;
}

describe.each(files.filter((f) => f.file.startsWith('examples/')))('math example $file', ({ source }) => {
  const t = load(source);
  const expected = /^# Expected: \{even_number: (\d+)\} -> (\w+)\.value = (\d+)$/m.exec(source);

  it('computes the result its header documents, with integer values throughout', () => {
    expect(expected).not.toBeNull();
    const [, n, step, value] = expected!;
    const context = { even_number: Number(n) };
    expect(compileContextSchema(t.contextSchema)(context)).toEqual([]);
    const values = runMath(t, context);
    expect(values.get(step!)).toBe(Number(value));
    for (const v of values.values()) expect(Number.isSafeInteger(v)).toBe(true);
  });

  it('stays in safe integers at the largest even number the schema allows', () => {
    const props = (t.contextSchema as { properties: { even_number: { maximum: number } } }).properties;
    const values = runMath(t, { even_number: props.even_number.maximum });
    for (const v of values.values()) expect(Number.isSafeInteger(v)).toBe(true);
  });
});

describe('example shapes', () => {
  const byName = new Map(files.map((f) => [f.file, load(f.source)]));
  const edges = (file: string) =>
    byName.get(file)!.steps.flatMap((s) => s.dependsOn.map((d) => `${d}->${s.name}`)).sort();

  it('linear_workflow is a chain of four', () => {
    expect(edges('examples/linear_workflow.yaml')).toEqual(['step_one->step_two', 'step_three->step_four', 'step_two->step_three']);
  });

  it('diamond_workflow is start -> left | right -> merge', () => {
    expect(edges('examples/diamond_workflow.yaml')).toEqual(['left->merge', 'right->merge', 'start->left', 'start->right']);
  });

  it('parallel_merge has three roots joined by merge', () => {
    const t = byName.get('examples/parallel_merge.yaml')!;
    expect(roots(t.steps)).toHaveLength(3);
    expect(t.steps.find((s) => s.name === 'merge')!.dependsOn).toHaveLength(3);
  });

  it('tree_workflow has one root, two branches with two leaves each, and a final join', () => {
    const t = byName.get('examples/tree_workflow.yaml')!;
    expect(roots(t.steps)).toEqual(['root']);
    expect(t.steps.filter((s) => s.dependsOn.length === 1 && s.dependsOn[0] === 'root')).toHaveLength(2);
    expect(t.steps.find((s) => s.name === 'final')!.dependsOn).toHaveLength(4);
  });

  it('mixed_dag has seven steps and a step with three parents', () => {
    const t = byName.get('examples/mixed_dag.yaml')!;
    expect(t.steps).toHaveLength(7);
    expect(t.steps.some((s) => s.dependsOn.length === 3)).toBe(true);
    expect(t.steps.filter((s) => s.dependsOn.length >= 2).length).toBeGreaterThanOrEqual(2);
  });
});

describe('ecommerce/order_fulfillment', () => {
  const t = load(files.find((f) => f.file === 'ecommerce/order_fulfillment.yaml')!.source);
  const validate = compileContextSchema(t.contextSchema);
  const order = {
    order_id: 'ORD-1001',
    customer: { email: 'ada@example.com', name: 'Ada Lovelace' },
    items: [{ sku: 'BOOK-1', quantity: 2, price: 12.5 }],
    payment: { method: 'card', token: 'tok_visa' },
  };

  it('has the documented DAG and handlers', () => {
    expect(t.steps.map((s) => [s.name, s.handler, s.dependsOn])).toEqual([
      ['validate_order', 'ecommerce.validate_order', []],
      ['reserve_inventory', 'inventory.reserve', ['validate_order']],
      ['process_payment', 'payments.charge', ['validate_order']],
      ['ship_order', 'shipping.ship', ['reserve_inventory', 'process_payment']],
      ['send_notification', 'notifications.send', ['ship_order']],
    ]);
  });

  it('retries payments 5 times exponentially and notifications linearly, with timeouts', () => {
    const step = (name: string) => t.steps.find((s) => s.name === name)!;
    expect(step('process_payment').retry).toMatchObject({ maxAttempts: 5, backoff: 'exponential' });
    expect(step('send_notification').retry.backoff).toBe('linear');
    for (const s of t.steps) expect(s.timeoutMs).toBeGreaterThan(0);
  });

  it('shortens every backoff in the test environment', () => {
    const test = applyEnvironment(t, 'test');
    test.steps.forEach((s, i) => {
      expect(s.retry.baseMs).toBeLessThan(t.steps[i]!.retry.baseMs);
      expect(s.retry.maxMs).toBeLessThanOrEqual(100);
      expect(s.retry.maxAttempts).toBe(t.steps[i]!.retry.maxAttempts);
    });
  });

  it('accepts a well-formed order', () => {
    expect(validate(order)).toEqual([]);
  });

  it.each([
    { name: 'missing order_id', context: { ...order, order_id: undefined }, path: '/order_id' },
    { name: 'bad email', context: { ...order, customer: { ...order.customer, email: 'not-an-email' } }, path: '/customer/email' },
    { name: 'missing customer name', context: { ...order, customer: { email: 'a@b.co' } }, path: '/customer/name' },
    { name: 'no items', context: { ...order, items: [] }, path: '/items' },
    { name: 'zero quantity', context: { ...order, items: [{ sku: 'X', quantity: 0, price: 1 }] }, path: '/items/0/quantity' },
    { name: 'negative price', context: { ...order, items: [{ sku: 'X', quantity: 1, price: -1 }] }, path: '/items/0/price' },
    { name: 'missing payment token', context: { ...order, payment: { method: 'card' } }, path: '/payment/token' },
  ])('rejects an order with $name', ({ context, path }) => {
    const clean = JSON.parse(JSON.stringify(context)) as unknown;
    expect(validate(clean).map((v) => v.path)).toEqual([path]);
  });
});
