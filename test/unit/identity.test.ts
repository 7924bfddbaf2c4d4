import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { canonicalHash, canonicalJson, pointer } from '../../src/domain/canonical-json.js';
import { ValidationError } from '../../src/domain/errors.js';
import { computeIdentity } from '../../src/domain/identity.js';
import type { TemplateRef } from '../../src/domain/template.js';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const ref: TemplateRef = { namespace: 'ecommerce', name: 'order_fulfillment', version: '1.0.0' };

describe('canonicalJson', () => {
  it.each([
    { name: 'null', value: null, json: 'null' },
    { name: 'booleans', value: [true, false], json: '[true,false]' },
    { name: 'numbers', value: [1, -2.5, 1e21, -0, 0.1], json: '[1,-2.5,1e+21,0,0.1]' },
    { name: 'strings with escapes', value: 'a"b\\c\n\u0001é', json: '"a\\"b\\\\c\\n\\u0001é"' },
    { name: 'empty containers', value: { a: [], b: {} }, json: '{"a":[],"b":{}}' },
    { name: 'sorted keys, recursively', value: { b: 1, a: { d: [{ z: 1, y: 2 }], c: null } }, json: '{"a":{"c":null,"d":[{"y":2,"z":1}]},"b":1}' },
    { name: 'keys sorted by code unit', value: { b: 1, B: 2, a: 3, _: 4, '10': 5, '9': 6 }, json: '{"10":5,"9":6,"B":2,"_":4,"a":3,"b":1}' },
    { name: 'undefined properties omitted', value: { a: 1, b: undefined }, json: '{"a":1}' },
    { name: 'null-prototype objects', value: Object.assign(Object.create(null) as object, { y: 1, x: 2 }), json: '{"x":2,"y":1}' },
  ])('$name', ({ value, json }) => {
    expect(canonicalJson(value)).toBe(json);
  });

  it('is independent of key order', () => {
    const a = { order_id: 'A1', customer: { name: 'Ada', email: 'ada@example.com' }, items: [{ sku: 'x', quantity: 1 }] };
    const b = { items: [{ quantity: 1, sku: 'x' }], customer: { email: 'ada@example.com', name: 'Ada' }, order_id: 'A1' };
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(canonicalHash(a)).toBe(canonicalHash(b));
    expect(canonicalHash(a)).toBe(sha256(canonicalJson(a)));
  });

  it('keeps array order significant', () => {
    expect(canonicalJson([1, 2])).not.toBe(canonicalJson([2, 1]));
  });

  const circular: Record<string, unknown> = { a: 1 };
  circular['self'] = circular;
  const sparse = [1, , 3]; // eslint-disable-line no-sparse-arrays

  it.each([
    { name: 'undefined at the top', value: undefined, path: '' },
    { name: 'undefined in an array', value: { list: [1, undefined] }, path: '/list/1' },
    { name: 'a hole in a sparse array', value: sparse, path: '/1' },
    { name: 'a function', value: { f: () => 1 }, path: '/f' },
    { name: 'a symbol', value: [Symbol('s')], path: '/0' },
    { name: 'a bigint', value: { n: 10n }, path: '/n' },
    { name: 'NaN', value: { a: { b: Number.NaN } }, path: '/a/b' },
    { name: 'Infinity', value: [Number.POSITIVE_INFINITY], path: '/0' },
    { name: 'a Date', value: { at: new Date(0) }, path: '/at' },
    { name: 'a Map', value: { m: new Map() }, path: '/m' },
    { name: 'a circular reference', value: circular, path: '/self' },
    { name: 'a key needing escaping', value: { 'a/b': { '~': Number.NaN } }, path: '/a~1b/~0' },
  ])('rejects $name with its path', ({ value, path }) => {
    let caught: unknown;
    try {
      canonicalJson(value);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ValidationError);
    expect((caught as ValidationError).violations[0]!.path).toBe(path);
  });

  it('allows the same object twice when it is not a cycle', () => {
    const shared = { x: 1 };
    expect(canonicalJson({ a: shared, b: shared })).toBe('{"a":{"x":1},"b":{"x":1}}');
  });

  it('pointer escapes ~ and /', () => {
    expect(pointer('/a', 'b/c~d')).toBe('/a/b~1c~0d');
    expect(pointer('', 3)).toBe('/3');
  });
});

describe('computeIdentity', () => {
  const context = { order_id: 'A1', total: 12.5 };

  it('strict: sha256 of template key and canonical context', () => {
    const { identityKey } = computeIdentity({ strategy: 'strict', template: ref, context });
    expect(identityKey).toBe(sha256('ecommerce/order_fulfillment@1.0.0{"order_id":"A1","total":12.5}'));
  });

  it('strict: same context in another key order gives the same key; another context or version does not', () => {
    const key = (c: unknown, r: TemplateRef = ref) => computeIdentity({ strategy: 'strict', template: r, context: c }).identityKey;
    expect(key({ total: 12.5, order_id: 'A1' })).toBe(key(context));
    expect(key({ order_id: 'A2', total: 12.5 })).not.toBe(key(context));
    expect(key(context, { ...ref, version: '1.0.1' })).not.toBe(key(context));
  });

  it('strict: refuses a context that is not JSON', () => {
    expect(() => computeIdentity({ strategy: 'strict', template: ref, context: { n: Number.NaN } })).toThrow(ValidationError);
  });

  it('caller_provided: sha256 of template key, NUL and the idempotency key', () => {
    const { identityKey } = computeIdentity({ strategy: 'caller_provided', template: ref, context, idempotencyKey: 'order-A1' });
    expect(identityKey).toBe(sha256('ecommerce/order_fulfillment@1.0.0\0order-A1'));
  });

  it('caller_provided: ignores the context', () => {
    const a = computeIdentity({ strategy: 'caller_provided', template: ref, context: { a: 1 }, idempotencyKey: 'k' });
    const b = computeIdentity({ strategy: 'caller_provided', template: ref, context: { a: 2 }, idempotencyKey: 'k' });
    expect(a).toEqual(b);
  });

  it.each([undefined, null, ''])('caller_provided: refuses idempotency key %j', (idempotencyKey) => {
    let caught: unknown;
    try {
      computeIdentity({ strategy: 'caller_provided', template: ref, context, idempotencyKey });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ValidationError);
    expect((caught as ValidationError).code).toBe('IDEMPOTENCY_KEY_REQUIRED');
    expect((caught as ValidationError).violations).toEqual([
      { path: '/idempotency_key', message: 'required by identity strategy caller_provided' },
    ]);
  });

  it('always_unique: no key', () => {
    expect(computeIdentity({ strategy: 'always_unique', template: ref, context })).toEqual({ identityKey: null });
    expect(computeIdentity({ strategy: 'always_unique', template: ref, context, idempotencyKey: '' })).toEqual({ identityKey: null });
  });

  it.each(['strict', 'always_unique'] as const)('%s: an idempotency key is used as caller_provided', (strategy) => {
    const given = computeIdentity({ strategy, template: ref, context, idempotencyKey: 'k-1' });
    const provided = computeIdentity({ strategy: 'caller_provided', template: ref, context: {}, idempotencyKey: 'k-1' });
    expect(given).toEqual(provided);
  });

  it('strict and caller-provided keys never coincide for the same inputs', () => {
    const strict = computeIdentity({ strategy: 'strict', template: ref, context: {} }).identityKey;
    const caller = computeIdentity({ strategy: 'caller_provided', template: ref, context: {}, idempotencyKey: '{}' }).identityKey;
    expect(strict).not.toBe(caller);
  });
});
