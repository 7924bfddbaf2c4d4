import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/domain/errors.js';
import { DEFAULT_RETRY_POLICY } from '../../src/domain/retry-policy.js';
import { templateKey, type RetryPolicy } from '../../src/domain/template.js';
import {
  applyEnvironment,
  parseTemplateDocument,
  parseTemplateYaml,
  templateBodyHash,
  templateAsDocument,
} from '../../src/domain/template-document.js';

const defaults = { retry: DEFAULT_RETRY_POLICY };

function minimal(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { namespace: 'shop', name: 'checkout', version: '1.0.0', steps: [{ name: 'a', handler: 'shop.a' }], ...extra };
}

function catchValidation(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValidationError) return err;
    throw err;
  }
  throw new Error('expected a ValidationError');
}

const yamlSource = `
namespace: shop
name: checkout
version: 2.1.0
description: Checkout flow
identity_strategy: caller_provided
context_schema:
  type: object
  required: [cart_id]
steps:
  - name: validate
    handler: shop.validate
  - name: charge
    handler: Payments::Charge
    depends_on: [validate]
    handler_config: { currency: EUR, options: { capture: true } }
    retry: { max_attempts: 5, base_ms: 200 }
    timeout_ms: 30000
environments:
  test:
    steps:
      charge:
        retry: { base_ms: 1, max_ms: 10 }
        handler_config: { sandbox: true }
        timeout_ms: null
`;

describe('parseTemplateYaml / parseTemplateDocument', () => {
  it('parses a full document into the camelCase model', () => {
    const t = parseTemplateYaml(yamlSource, defaults);
    expect(templateKey(t)).toBe('shop/checkout@2.1.0');
    expect(t.description).toBe('Checkout flow');
    expect(t.identityStrategy).toBe('caller_provided');
    expect(t.contextSchema).toEqual({ type: 'object', required: ['cart_id'] });
    expect(t.steps[1]).toEqual({
      name: 'charge',
      handler: 'Payments::Charge',
      dependsOn: ['validate'],
      handlerConfig: { currency: 'EUR', options: { capture: true } },
      retry: { ...DEFAULT_RETRY_POLICY, maxAttempts: 5, baseMs: 200 },
      timeoutMs: 30000,
    });
    expect(t.environments).toEqual({
      test: { steps: { charge: { retry: { baseMs: 1, maxMs: 10 }, handlerConfig: { sandbox: true }, timeoutMs: null } } },
    });
  });

  it('fills every default', () => {
    const t = parseTemplateDocument(minimal(), defaults);
    expect(t).toEqual({
      namespace: 'shop',
      name: 'checkout',
      version: '1.0.0',
      description: '',
      contextSchema: null,
      identityStrategy: 'strict',
      steps: [{ name: 'a', handler: 'shop.a', dependsOn: [], handlerConfig: {}, retry: DEFAULT_RETRY_POLICY, timeoutMs: null }],
      environments: {},
    });
  });

  it('merges retry defaults field by field from the given defaults', () => {
    const custom: RetryPolicy = { maxAttempts: 7, backoff: 'linear', baseMs: 10, maxMs: 90, jitter: 0 };
    const t = parseTemplateDocument(minimal({ steps: [{ name: 'a', handler: 'h', retry: { backoff: 'fixed', max_ms: 50 } }] }), { retry: custom });
    expect(t.steps[0]!.retry).toEqual({ maxAttempts: 7, backoff: 'fixed', baseMs: 10, maxMs: 50, jitter: 0 });
  });

  it('treats null like an absent optional key', () => {
    const t = parseTemplateDocument(
      minimal({ description: null, context_schema: null, identity_strategy: null, environments: null, steps: [{ name: 'a', handler: 'h', depends_on: null, handler_config: null, retry: null, timeout_ms: null }] }),
      defaults,
    );
    expect(t.steps[0]).toEqual({ name: 'a', handler: 'h', dependsOn: [], handlerConfig: {}, retry: DEFAULT_RETRY_POLICY, timeoutMs: null });
  });

  it.each([
    { name: 'unknown top-level key', doc: minimal({ retries: 3 }), violations: [{ path: '/retries', message: "unknown key 'retries'" }] },
    {
      name: 'unknown step key, named by step',
      doc: minimal({ steps: [{ name: 'a', handler: 'h', dependsOn: ['x'] }] }),
      violations: [{ path: '/steps/0/dependsOn', message: "step 'a': unknown key 'dependsOn'" }],
    },
    {
      name: 'unknown retry key',
      doc: minimal({ steps: [{ name: 'a', handler: 'h', retry: { attempts: 3 } }] }),
      violations: [{ path: '/steps/0/retry/attempts', message: "step 'a': unknown key 'attempts'" }],
    },
    {
      name: 'wrong types by path',
      doc: minimal({ steps: [{ name: 'a', handler: 'h' }, { name: 'b', handler: 'h', retry: { base_ms: 'fast' } }] }),
      violations: [{ path: '/steps/1/retry/base_ms', message: "step 'b': Invalid input: expected number, received string" }],
    },
    { name: 'missing handler', doc: minimal({ steps: [{ name: 'a' }] }), violations: [{ path: '/steps/0/handler', message: "step 'a': handler is required" }] },
    { name: 'numeric version', doc: minimal({ version: 1 }), violations: [{ path: '/version', message: 'version must be a string (quote numeric versions in YAML, e.g. "1.0")' }] },
    { name: 'unknown backoff', doc: minimal({ steps: [{ name: 'a', handler: 'h', retry: { backoff: 'random' } }] }), violations: [{ path: '/steps/0/retry/backoff', message: expect.stringMatching(/^step 'a': Invalid option/) }] },
    { name: 'unknown environment override key', doc: minimal({ environments: { test: { steps: { a: { depends_on: [] } } } } }), violations: [{ path: '/environments/test/steps/a/depends_on', message: "unknown key 'depends_on'" }] },
    { name: 'not an object', doc: 'steps: []', violations: [{ path: '', message: expect.stringMatching(/expected object/) }] },
  ])('rejects $name', ({ doc, violations }) => {
    const err = catchValidation(() => parseTemplateDocument(doc, defaults));
    expect(err.code).toBe('TEMPLATE_INVALID');
    expect(err.violations).toEqual(violations);
  });

  it('lists every shape violation at once', () => {
    const doc = { namespace: 'shop', name: 5, steps: [{ name: 'a', handler: 'h', extra: 1 }], surplus: true };
    expect(catchValidation(() => parseTemplateDocument(doc, defaults)).violations.map((v) => v.path)).toEqual([
      '/name',
      '/version',
      '/steps/0/extra',
      '/surplus',
    ]);
  });

  it('applies the template rules after the shape (a parsed template is valid)', () => {
    const doc = minimal({ steps: [{ name: 'ship', handler: 'h', depends_on: ['pack'], retry: { base_ms: 10, max_ms: 5 } }] });
    const err = catchValidation(() => parseTemplateDocument(doc, defaults));
    expect(err.code).toBe('TEMPLATE_INVALID');
    expect(err.violations).toEqual([
      { path: '/steps/0/retry/max_ms', message: "step 'ship': retry.max_ms must be at least retry.base_ms (10), got 5" },
      { path: '/steps/0/depends_on/0', message: "step 'ship' depends on unknown step 'pack'" },
    ]);
    expect(err.message).toMatch(/^template shop\/checkout@1\.0\.0 is invalid: /);
  });

  it.each([
    { name: 'syntax error', source: 'namespace: [unclosed', message: /^YAML / },
    { name: 'duplicate keys', source: 'namespace: a\nnamespace: b\n', message: /^YAML DUPLICATE_KEY/ },
    { name: 'two documents', source: 'a: 1\n---\nb: 2\n', message: /^YAML / },
    { name: 'an unresolved alias', source: 'a: &x [1]\nb: *y\n', message: /^YAML: Unresolved alias/ },
    {
      name: 'an alias bomb',
      source: ['a: &a [x, x, x, x, x, x, x, x, x]', 'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]', 'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]', 'd: [*c, *c, *c, *c, *c, *c, *c, *c, *c]'].join('\n'),
      message: /^YAML: Excessive alias count/,
    },
    { name: 'an empty file', source: '', message: /expected object, received null/ },
  ])('rejects YAML with a $name', ({ source, message }) => {
    const err = catchValidation(() => parseTemplateYaml(source, defaults));
    expect(err.code).toBe('TEMPLATE_INVALID');
    expect(err.violations[0]!.message).toMatch(message);
  });

  it('refuses YAML values that are not JSON', () => {
    const source = 'namespace: s\nname: n\nversion: "1"\nsteps:\n  - name: a\n    handler: h\n    handler_config: { limit: .inf }\n';
    expect(catchValidation(() => parseTemplateYaml(source, defaults)).violations).toEqual([
      { path: '/steps/0/handler_config/limit', message: "step 'a': handler_config: Infinity is not a JSON value" },
    ]);
  });
});

describe('templateAsDocument', () => {
  it('round-trips through parseTemplateDocument, whatever the defaults', () => {
    const t = parseTemplateYaml(yamlSource, defaults);
    const doc = templateAsDocument(t);
    const other: RetryPolicy = { maxAttempts: 9, backoff: 'fixed', baseMs: 1, maxMs: 1, jitter: 0 };
    expect(parseTemplateDocument(doc, { retry: other })).toEqual(t);
    expect(parseTemplateDocument(JSON.parse(JSON.stringify(doc)), defaults)).toEqual(t);
  });

  it('writes every default explicitly in snake_case', () => {
    const doc = templateAsDocument(parseTemplateDocument(minimal(), defaults));
    expect(doc).toEqual({
      namespace: 'shop',
      name: 'checkout',
      version: '1.0.0',
      description: '',
      context_schema: null,
      identity_strategy: 'strict',
      steps: [
        {
          name: 'a',
          handler: 'shop.a',
          depends_on: [],
          handler_config: {},
          retry: { max_attempts: 3, backoff: 'exponential', base_ms: 1000, max_ms: 60000, jitter: 0.1 },
          timeout_ms: null,
        },
      ],
      environments: {},
    });
  });

  it('keeps only the fields an override sets', () => {
    const doc = templateAsDocument(parseTemplateYaml(yamlSource, defaults));
    expect(doc.environments).toEqual({
      test: { steps: { charge: { retry: { base_ms: 1, max_ms: 10 }, handler_config: { sandbox: true }, timeout_ms: null } } },
    });
  });
});

describe('templateBodyHash', () => {
  const base = parseTemplateYaml(yamlSource, defaults);

  it('is a sha256 hex digest', () => {
    expect(templateBodyHash(base)).toMatch(/^[0-9a-f]{64}$/);
  });

  it('does not depend on key order anywhere in the document', () => {
    const reordered = `
steps:
  - handler: shop.validate
    name: validate
  - timeout_ms: 30000
    retry: { base_ms: 200, max_attempts: 5 }
    handler_config: { options: { capture: true }, currency: EUR }
    depends_on: [validate]
    handler: Payments::Charge
    name: charge
environments:
  test:
    steps:
      charge:
        timeout_ms: null
        handler_config: { sandbox: true }
        retry: { max_ms: 10, base_ms: 1 }
context_schema:
  required: [cart_id]
  type: object
identity_strategy: caller_provided
description: Checkout flow
version: 2.1.0
name: checkout
namespace: shop
`;
    expect(templateBodyHash(parseTemplateYaml(reordered, defaults))).toBe(templateBodyHash(base));
  });

  it('equals for explicit defaults and omitted ones', () => {
    const implicit = parseTemplateDocument(minimal(), defaults);
    const explicit = parseTemplateDocument(
      minimal({ description: '', identity_strategy: 'strict', steps: [{ name: 'a', handler: 'shop.a', depends_on: [], retry: { max_attempts: 3 } }] }),
      defaults,
    );
    expect(templateBodyHash(explicit)).toBe(templateBodyHash(implicit));
  });

  it.each([
    { name: 'description', change: (s: string) => s.replace('Checkout flow', 'Checkout') },
    { name: 'a retry field', change: (s: string) => s.replace('base_ms: 200', 'base_ms: 201') },
    { name: 'a handler_config value', change: (s: string) => s.replace('currency: EUR', 'currency: USD') },
    { name: 'an override', change: (s: string) => s.replace('sandbox: true', 'sandbox: false') },
    { name: 'the context schema', change: (s: string) => s.replace('required: [cart_id]', 'required: [cart]') },
  ])('changes with $name', ({ change }) => {
    expect(templateBodyHash(parseTemplateYaml(change(yamlSource), defaults))).not.toBe(templateBodyHash(base));
  });

  it('changes with the server default retry policy (the body is the effective template)', () => {
    const other = parseTemplateYaml(yamlSource, { retry: { ...DEFAULT_RETRY_POLICY, jitter: 0.5 } });
    expect(templateBodyHash(other)).not.toBe(templateBodyHash(base));
  });
});

describe('applyEnvironment', () => {
  const t = parseTemplateYaml(yamlSource, defaults);

  it('merges the overrides of the named environment', () => {
    const applied = applyEnvironment(t, 'test');
    expect(applied.steps[0]).toBe(t.steps[0]);
    expect(applied.steps[1]).toEqual({
      ...t.steps[1],
      handlerConfig: { currency: 'EUR', options: { capture: true }, sandbox: true },
      retry: { ...t.steps[1]!.retry, baseMs: 1, maxMs: 10 },
      timeoutMs: null,
    });
    expect(applied.environments).toBe(t.environments);
    expect(applyEnvironment(applied, 'test')).toEqual(applied);
  });

  it('replaces the handler and keeps fields the override does not set', () => {
    const doc = minimal({
      steps: [{ name: 'a', handler: 'h', handler_config: { k: 1 }, timeout_ms: 500 }],
      environments: { production: { steps: { a: { handler: 'h.v2' } } } },
    });
    const applied = applyEnvironment(parseTemplateDocument(doc, defaults), 'production');
    expect(applied.steps[0]).toEqual({ name: 'a', handler: 'h.v2', dependsOn: [], handlerConfig: { k: 1 }, retry: DEFAULT_RETRY_POLICY, timeoutMs: 500 });
  });

  it.each(['development', 'constructor', 'toString'])('returns the template itself for environment %s without overrides', (env) => {
    expect(applyEnvironment(t, env)).toBe(t);
  });

  it('refuses overrides of unknown steps', () => {
    const broken = { ...t, environments: { test: { steps: { pack: { timeoutMs: 5 } } } } };
    const err = catchValidation(() => applyEnvironment(broken, 'test'));
    expect(err.code).toBe('TEMPLATE_INVALID');
    expect(err.violations).toEqual([{ path: '/environments/test/steps/pack', message: "environment 'test' overrides unknown step 'pack'" }]);
  });
});
