import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/domain/errors.js';
import { DEFAULT_RETRY_POLICY } from '../../src/domain/retry-policy.js';
import type { RetryPolicy, StepTemplate, TaskTemplate } from '../../src/domain/template.js';
import { assertValidTemplate, validateTemplate } from '../../src/domain/template-validation.js';

function step(name: string, dependsOn: string[] = [], extra: Partial<StepTemplate> = {}): StepTemplate {
  return { name, handler: `h.${name}`, dependsOn, handlerConfig: {}, retry: DEFAULT_RETRY_POLICY, timeoutMs: null, ...extra };
}

function template(steps: StepTemplate[], extra: Partial<TaskTemplate> = {}): TaskTemplate {
  return {
    namespace: 'shop',
    name: 'checkout',
    version: '1.0.0',
    description: '',
    contextSchema: null,
    identityStrategy: 'strict',
    steps,
    environments: {},
    ...extra,
  };
}

function withRetry(r: Partial<RetryPolicy>): StepTemplate {
  return step('pay', [], { retry: { ...DEFAULT_RETRY_POLICY, ...r } });
}

describe('validateTemplate', () => {
  it('accepts a valid diamond', () => {
    expect(validateTemplate(template([step('a'), step('b', ['a']), step('c', ['a']), step('d', ['b', 'c'])]))).toEqual([]);
  });

  const cases: { name: string; t: TaskTemplate; expected: { path: string; message: string | RegExp }[] }[] = [
    { name: 'empty template', t: template([]), expected: [{ path: '/steps', message: /no steps/ }] },
    {
      name: 'duplicate step names',
      t: template([step('a'), step('b'), step('a')]),
      expected: [{ path: '/steps/2/name', message: "duplicate step name 'a' (first declared at /steps/0)" }],
    },
    {
      name: 'unknown dependency',
      t: template([step('build'), step('ship', ['pack'])]),
      expected: [{ path: '/steps/1/depends_on/0', message: "step 'ship' depends on unknown step 'pack'" }],
    },
    {
      name: 'self-dependency',
      t: template([step('a', ['a'])]),
      expected: [{ path: '/steps/0/depends_on/0', message: "step 'a' depends on itself" }],
    },
    {
      name: 'duplicate dependency',
      t: template([step('a'), step('b', ['a', 'a'])]),
      expected: [{ path: '/steps/1/depends_on/1', message: "step 'b' lists dependency 'a' more than once" }],
    },
    {
      name: 'cycle of two',
      t: template([step('root'), step('a', ['root', 'b']), step('b', ['a'])]),
      expected: [{ path: '/steps/1/depends_on', message: 'cycle: a -> b -> a' }],
    },
    {
      name: 'cycle of three',
      t: template([step('a', ['c']), step('b', ['a']), step('c', ['b'])]),
      expected: [{ path: '/steps/0/depends_on', message: 'cycle: a -> b -> c -> a' }],
    },
    {
      name: 'two separate cycles',
      t: template([step('a', ['b']), step('b', ['a']), step('x', ['z']), step('y', ['x']), step('z', ['y'])]),
      expected: [
        { path: '/steps/0/depends_on', message: 'cycle: a -> b -> a' },
        { path: '/steps/2/depends_on', message: 'cycle: x -> y -> z -> x' },
      ],
    },
    {
      name: 'bad template names',
      t: template([step('Bad Step', [], { handler: 'h' })], { namespace: 'Shop', name: '9lives', version: 'v 1' }),
      expected: [
        { path: '/namespace', message: /namespace "Shop" must match/ },
        { path: '/name', message: /name "9lives" must match/ },
        { path: '/version', message: /version "v 1" must be/ },
        { path: '/steps/0/name', message: /step name "Bad Step" must match/ },
      ],
    },
    {
      name: 'unknown identity strategy',
      t: template([step('a')], { identityStrategy: 'sometimes' as TaskTemplate['identityStrategy'] }),
      expected: [{ path: '/identity_strategy', message: /must be one of strict, caller_provided, always_unique/ }],
    },
    {
      name: 'handler with spaces',
      t: template([step('a', [], { handler: 'do it' })]),
      expected: [{ path: '/steps/0/handler', message: /step 'a': handler must be/ }],
    },
    {
      name: 'non-JSON handler_config',
      t: template([step('a', [], { handlerConfig: { deep: { n: Number.NaN } } })]),
      expected: [{ path: '/steps/0/handler_config/deep/n', message: /step 'a': handler_config: NaN is not a JSON value/ }],
    },
    {
      name: 'timeout of zero',
      t: template([step('a', [], { timeoutMs: 0 })]),
      expected: [{ path: '/steps/0/timeout_ms', message: /step 'a': timeout_ms must be null or an integer from 1/ }],
    },
    {
      name: 'negative timeout',
      t: template([step('a', [], { timeoutMs: -5 })]),
      expected: [{ path: '/steps/0/timeout_ms', message: /timeout_ms/ }],
    },
    {
      name: 'invalid context schema',
      t: template([step('a')], { contextSchema: { type: 'object', properties: { n: { type: 'integer', minimum: 'one' } } } }),
      expected: [{ path: '/context_schema/properties/n/minimum', message: 'must be number' }],
    },
    {
      name: 'unknown keyword in context schema',
      t: template([step('a')], { contextSchema: { type: 'object', requried: ['n'] } }),
      expected: [{ path: '/context_schema', message: 'strict mode: unknown keyword: "requried"' }],
    },
  ];

  it.each(cases)('rejects $name', ({ t, expected }) => {
    const violations = validateTemplate(t);
    expect(violations).toHaveLength(expected.length);
    expected.forEach((e, i) => {
      expect(violations[i]!.path).toBe(e.path);
      if (typeof e.message === 'string') expect(violations[i]!.message).toBe(e.message);
      else expect(violations[i]!.message).toMatch(e.message);
    });
  });

  const retryCases: { r: Partial<RetryPolicy>; path: string; message: RegExp }[] = [
    { r: { maxAttempts: 0 }, path: '/steps/0/retry/max_attempts', message: /step 'pay': retry.max_attempts must be an integer from 1 to 100 \(got 0\)/ },
    { r: { maxAttempts: 101 }, path: '/steps/0/retry/max_attempts', message: /from 1 to 100/ },
    { r: { maxAttempts: 2.5 }, path: '/steps/0/retry/max_attempts', message: /integer/ },
    { r: { baseMs: -1 }, path: '/steps/0/retry/base_ms', message: /retry.base_ms must be an integer from 0/ },
    { r: { baseMs: 5000, maxMs: 1000 }, path: '/steps/0/retry/max_ms', message: /retry.max_ms must be at least retry.base_ms \(5000\), got 1000/ },
    { r: { maxMs: 3_000_000_000 }, path: '/steps/0/retry/max_ms', message: /from 0 to 2147483647/ },
    { r: { jitter: -0.1 }, path: '/steps/0/retry/jitter', message: /retry.jitter must be a number from 0 to 1/ },
    { r: { jitter: 1.5 }, path: '/steps/0/retry/jitter', message: /jitter/ },
    { r: { backoff: 'random' as RetryPolicy['backoff'] }, path: '/steps/0/retry/backoff', message: /must be one of exponential, linear, fixed/ },
  ];

  it.each(retryCases)('rejects retry $r', ({ r, path, message }) => {
    const violations = validateTemplate(template([withRetry(r)]));
    expect(violations).toHaveLength(1);
    expect(violations[0]!.path).toBe(path);
    expect(violations[0]!.message).toMatch(message);
  });

  it.each([
    { maxAttempts: 1 },
    { maxAttempts: 100 },
    { baseMs: 0, maxMs: 0 },
    { baseMs: 500, maxMs: 500 },
    { jitter: 0 },
    { jitter: 1 },
  ])('accepts retry boundary %o', (r) => {
    expect(validateTemplate(template([withRetry(r)]))).toEqual([]);
  });

  it('reports every problem at once', () => {
    const t = template([step('a', ['missing']), step('a', [], { timeoutMs: 0 }), withRetry({ jitter: 2 })], { version: '' });
    expect(validateTemplate(t).map((v) => v.path)).toEqual([
      '/version',
      '/steps/0/depends_on/0',
      '/steps/1/name',
      '/steps/1/timeout_ms',
      '/steps/2/retry/jitter',
    ]);
  });

  describe('environment overrides', () => {
    it('rejects overrides of unknown steps', () => {
      const t = template([step('a')], { environments: { test: { steps: { pack: { timeoutMs: 5 } } } } });
      expect(validateTemplate(t)).toEqual([
        { path: '/environments/test/steps/pack', message: "environment 'test' overrides unknown step 'pack'" },
      ]);
    });

    it('checks the values an override changes, against the merged step', () => {
      const t = template([step('a', [], { retry: { ...DEFAULT_RETRY_POLICY, baseMs: 100, maxMs: 1000 } })], {
        environments: { fast: { steps: { a: { retry: { maxMs: 50 }, timeoutMs: 0, handler: '' } } } },
      });
      expect(validateTemplate(t).map((v) => v.path)).toEqual([
        '/environments/fast/steps/a/handler',
        '/environments/fast/steps/a/retry/max_ms',
        '/environments/fast/steps/a/timeout_ms',
      ]);
    });

    it('rejects a bad environment name', () => {
      const t = template([step('a')], { environments: { 'Prod Env': { steps: {} } } });
      expect(validateTemplate(t)).toEqual([{ path: '/environments/Prod Env', message: expect.stringMatching(/environment name/) }]);
    });

    it('accepts overrides that keep the step valid, including timeout reset to null', () => {
      const t = template([step('a', [], { timeoutMs: 1000 })], {
        environments: { test: { steps: { a: { retry: { baseMs: 10, maxMs: 100 }, timeoutMs: null, handlerConfig: { x: 1 } } } } },
      });
      expect(validateTemplate(t)).toEqual([]);
    });
  });
});

describe('assertValidTemplate', () => {
  it('throws TEMPLATE_INVALID with every violation and the first in the message', () => {
    const t = template([step('ship', ['pack']), step('ship')]);
    const err = (() => {
      try {
        assertValidTemplate(t);
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(ValidationError);
    const v = err as ValidationError;
    expect(v.code).toBe('TEMPLATE_INVALID');
    expect(v.category).toBe('invalid_argument');
    expect(v.violations).toHaveLength(2);
    expect(v.message).toBe(
      "template shop/checkout@1.0.0 is invalid: /steps/0/depends_on/0: step 'ship' depends on unknown step 'pack' (and 1 more)",
    );
  });

  it('returns quietly for a valid template', () => {
    expect(() => assertValidTemplate(template([step('a')]))).not.toThrow();
  });
});

describe('large templates', () => {
  it('validates a 10,000-step layered DAG and finds a cycle closing over the whole chain', () => {
    const n = 10_000;
    const steps = Array.from({ length: n }, (_, i) =>
      step(`s${i}`, i === 0 ? [] : i < 3 ? [`s${i - 1}`] : [`s${i - 1}`, `s${i - 3}`]),
    );
    expect(validateTemplate(template(steps))).toEqual([]);
    const cyclic = [step('s0', [`s${n - 1}`]), ...steps.slice(1)];
    const violations = validateTemplate(template(cyclic));
    expect(violations).toHaveLength(1);
    expect(violations[0]!.message.startsWith('cycle: s0 -> ')).toBe(true);
    expect(violations[0]!.message.endsWith(` -> s${n - 1} -> s0`)).toBe(true);
  });
});
