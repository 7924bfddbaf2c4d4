import { describe, expect, it } from 'vitest';
import {
  assertContextValid,
  compileContextSchema,
  ContextSchemaCache,
  contextSchemaViolations,
  type ContextValidator,
} from '../../src/domain/context-schema.js';
import { ValidationError } from '../../src/domain/errors.js';

const orderSchema = {
  type: 'object',
  required: ['order_id', 'customer', 'items'],
  additionalProperties: false,
  properties: {
    order_id: { type: 'string', minLength: 1 },
    customer: {
      type: 'object',
      required: ['email', 'name'],
      properties: { email: { type: 'string', format: 'email' }, name: { type: 'string' } },
    },
    items: {
      type: 'array',
      minItems: 1,
      items: {
        type: 'object',
        required: ['sku', 'quantity'],
        properties: { sku: { type: 'string' }, quantity: { type: 'integer', minimum: 1 } },
      },
    },
    placed_at: { type: 'string', format: 'date-time' },
  },
};

const valid = { order_id: 'A1', customer: { email: 'ada@example.com', name: 'Ada' }, items: [{ sku: 'x', quantity: 2 }] };

function catchValidation(fn: () => unknown): ValidationError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValidationError) return err;
    throw err;
  }
  throw new Error('expected a ValidationError');
}

describe('compileContextSchema: contexts', () => {
  const validate = compileContextSchema(orderSchema);

  it('accepts a valid context', () => {
    expect(validate(valid)).toEqual([]);
    expect(validate({ ...valid, placed_at: '2024-05-01T10:00:00Z' })).toEqual([]);
  });

  it.each([
    { name: 'bad email format', context: { ...valid, customer: { email: 'nope', name: 'Ada' } }, violations: [{ path: '/customer/email', message: 'must match format "email"' }] },
    { name: 'bad date-time format', context: { ...valid, placed_at: 'yesterday' }, violations: [{ path: '/placed_at', message: 'must match format "date-time"' }] },
    { name: 'missing property points at the property', context: { customer: valid.customer, items: valid.items }, violations: [{ path: '/order_id', message: "must have required property 'order_id'" }] },
    { name: 'nested missing property', context: { ...valid, customer: { email: 'a@b.co' } }, violations: [{ path: '/customer/name', message: "must have required property 'name'" }] },
    { name: 'additional property', context: { ...valid, coupon: 'X' }, violations: [{ path: '/coupon', message: 'must NOT have additional properties' }] },
    { name: 'array item by index', context: { ...valid, items: [{ sku: 'x', quantity: 1 }, { sku: 'y', quantity: 0 }] }, violations: [{ path: '/items/1/quantity', message: 'must be >= 1' }] },
    { name: 'empty array', context: { ...valid, items: [] }, violations: [{ path: '/items', message: 'must NOT have fewer than 1 items' }] },
    { name: 'not an object', context: [valid], violations: [{ path: '', message: 'must be object' }] },
    { name: 'null', context: null, violations: [{ path: '', message: 'must be object' }] },
  ])('reports $name', ({ context, violations }) => {
    expect(validate(context)).toEqual(violations);
  });

  it('reports every violation at once (allErrors)', () => {
    const context = { order_id: '', customer: { email: 'bad', name: 7 }, items: [{ sku: 1, quantity: 'two' }] };
    expect(validate(context).map((v) => v.path)).toEqual([
      '/order_id',
      '/customer/email',
      '/customer/name',
      '/items/0/sku',
      '/items/0/quantity',
    ]);
  });

  it('without a schema accepts any object, and only objects', () => {
    const any = compileContextSchema(null);
    expect(any({})).toEqual([]);
    expect(any({ whatever: [1, { x: null }] })).toEqual([]);
    expect(any('text')).toEqual([{ path: '', message: 'must be object' }]);
  });
});

describe('compileContextSchema: dialects', () => {
  it.each([
    { dialect: 'draft-07 (default)', schema: { type: 'object', properties: { n: { type: 'integer' } } } },
    { dialect: 'draft-07 explicit', schema: { $schema: 'http://json-schema.org/draft-07/schema#', type: 'object', properties: { n: { type: 'integer' } } } },
    { dialect: '2019-09', schema: { $schema: 'https://json-schema.org/draft/2019-09/schema', type: 'object', properties: { n: { type: 'integer' } } } },
    { dialect: '2020-12', schema: { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', properties: { n: { type: 'integer' } } } },
  ])('$dialect', ({ schema }) => {
    const validate = compileContextSchema(schema);
    expect(validate({ n: 1 })).toEqual([]);
    expect(validate({ n: 1.5 })).toEqual([{ path: '/n', message: 'must be integer' }]);
  });

  it('2020-12 keywords work (prefixItems, unevaluatedProperties)', () => {
    const validate = compileContextSchema({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      properties: { pair: { type: 'array', prefixItems: [{ type: 'string' }, { type: 'number' }] } },
      unevaluatedProperties: false,
    });
    expect(validate({ pair: ['a', 1] })).toEqual([]);
    expect(validate({ pair: [1, 1], extra: true })).toEqual([
      { path: '/pair/0', message: 'must be string' },
      { path: '/extra', message: 'must NOT have unevaluated properties' },
    ]);
  });

  it('refuses an unsupported $schema', () => {
    expect(contextSchemaViolations({ $schema: 'http://json-schema.org/draft-04/schema#' })).toEqual([
      { path: '/context_schema/$schema', message: expect.stringMatching(/^unsupported \$schema/) },
    ]);
  });
});

describe('invalid schemas', () => {
  it.each([
    { name: 'bad type name', schema: { type: 'strin' }, path: '/context_schema/type' },
    { name: 'negative minLength', schema: { properties: { a: { type: 'string', minLength: -1 } } }, path: '/context_schema/properties/a/minLength' },
    { name: 'unknown keyword (typo)', schema: { type: 'object', requried: ['a'] }, path: '/context_schema' },
    { name: 'unknown format', schema: { type: 'string', format: 'emial' }, path: '/context_schema' },
    { name: 'unresolvable local $ref', schema: { $ref: '#/definitions/missing' }, path: '/context_schema' },
    { name: 'remote $ref (nothing is fetched)', schema: { $ref: 'https://example.com/schema.json' }, path: '/context_schema' },
    { name: 'an array instead of an object', schema: [] as unknown as object, path: '/context_schema' },
  ])('$name', ({ schema, path }) => {
    const violations = contextSchemaViolations(schema);
    expect(violations.length).toBeGreaterThan(0);
    expect(violations[0]!.path).toBe(path);
    const err = catchValidation(() => compileContextSchema(schema));
    expect(err.code).toBe('TEMPLATE_INVALID');
    expect(err.violations).toEqual(violations);
  });

  it('reports ajv’s own message', () => {
    expect(contextSchemaViolations({ type: 'object', requried: ['a'] })).toEqual([
      { path: '/context_schema', message: 'strict mode: unknown keyword: "requried"' },
    ]);
  });

  it('accepts annotations and two schemas with the same $id', () => {
    const schema = { $id: 'https://example.com/ctx', title: 'ctx', description: 'd', examples: [{}], default: {}, type: 'object' };
    expect(contextSchemaViolations(schema)).toEqual([]);
    expect(contextSchemaViolations({ ...schema, required: ['a'] })).toEqual([]);
  });
});

describe('assertContextValid', () => {
  const validate = compileContextSchema(orderSchema);

  it('passes a valid context', () => {
    expect(() => assertContextValid(validate, valid)).not.toThrow();
  });

  it('throws CONTEXT_INVALID listing every violation', () => {
    const err = catchValidation(() => assertContextValid(validate, { ...valid, order_id: 5, customer: { email: 'x', name: 'A' } }));
    expect(err.code).toBe('CONTEXT_INVALID');
    expect(err.violations).toEqual([
      { path: '/order_id', message: 'must be string' },
      { path: '/customer/email', message: 'must match format "email"' },
    ]);
    expect(err.message).toBe('task context is invalid: /order_id: must be string; /customer/email: must match format "email"');
  });
});

describe('ContextSchemaCache', () => {
  it('compiles once per key and evicts the least recently used', () => {
    const compiled: string[] = [];
    const cache = new ContextSchemaCache(2, (schema) => {
      compiled.push(JSON.stringify(schema));
      return compileContextSchema(schema);
    });
    const a = cache.validatorFor('a', { type: 'object' });
    expect(cache.validatorFor('a', { type: 'object' })).toBe(a);
    cache.validatorFor('b', null);
    cache.validatorFor('a', { type: 'object' }); // a is now the most recent
    cache.validatorFor('c', { type: 'object', required: ['x'] }); // evicts b
    expect(cache.has('a')).toBe(true);
    expect(cache.has('b')).toBe(false);
    expect(cache.has('c')).toBe(true);
    expect(cache.size).toBe(2);
    expect(compiled).toHaveLength(3);
    cache.clear();
    expect(cache.size).toBe(0);
  });

  it('does not cache a schema that fails to compile', () => {
    const cache = new ContextSchemaCache();
    expect(() => cache.validatorFor('bad', { type: 'nope' })).toThrow(ValidationError);
    expect(cache.has('bad')).toBe(false);
  });

  it('refuses a non-positive size', () => {
    expect(() => new ContextSchemaCache(0)).toThrow(RangeError);
  });

  it('returns working validators', () => {
    const cache = new ContextSchemaCache();
    const v: ContextValidator = cache.validatorFor('k', orderSchema);
    expect(v(valid)).toEqual([]);
  });
});
