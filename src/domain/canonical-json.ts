/**
 * Canonical JSON: one byte-exact text per JSON value, so that equal values hash
 * equally whatever their key order. Object keys are sorted by UTF-16 code units
 * (as JavaScript's default sort and RFC 8785 do), no whitespace is emitted, numbers
 * and strings are written as `JSON.stringify` writes them (so `-0` becomes `0`).
 *
 * Only JSON values are accepted: `null`, booleans, finite numbers, strings, arrays and
 * plain objects. `undefined` object properties are omitted, as JSON itself would; any
 * other non-JSON value (undefined in an array or at the top, functions, symbols,
 * bigints, NaN, Infinity, Dates, Maps, class instances, cycles) is refused with a
 * ValidationError naming its path.
 */
import { createHash } from 'node:crypto';
import { ValidationError } from './errors.js';

/** The canonical JSON text of `value`; throws ValidationError when it is not a JSON value. */
export function canonicalJson(value: unknown): string {
  return write(value, '', new Set<object>());
}

/** sha256 hex digest of a UTF-8 string. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** sha256 hex digest of the canonical JSON of `value`. */
export function canonicalHash(value: unknown): string {
  return sha256Hex(canonicalJson(value));
}

/** Appends one JSON-pointer segment (RFC 6901 escaping) to `path`. */
export function pointer(path: string, segment: string | number): string {
  return `${path}/${String(segment).replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

function notJson(path: string, what: string): ValidationError {
  return new ValidationError(`not a JSON value at ${path || '/'}: ${what}`, [
    { path, message: `${what} is not a JSON value` },
  ]);
}

function write(value: unknown, path: string, stack: Set<object>): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw notJson(path, String(value));
      return JSON.stringify(value);
    case 'object':
      if (value === null) return 'null';
      return writeContainer(value, path, stack);
    default:
      throw notJson(path, typeof value);
  }
}

function writeContainer(value: object, path: string, stack: Set<object>): string {
  if (stack.has(value)) throw notJson(path, 'a circular reference');
  stack.add(value);
  let out: string;
  if (Array.isArray(value)) {
    const items: string[] = [];
    // An index loop, not map(): map() skips the holes of a sparse array.
    for (let i = 0; i < value.length; i++) items.push(write(value[i], pointer(path, i), stack));
    out = `[${items.join(',')}]`;
  } else {
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) {
      throw notJson(path, `an instance of ${value.constructor?.name ?? 'a class'}`);
    }
    const record = value as Record<string, unknown>;
    const parts: string[] = [];
    for (const key of Object.keys(record).sort()) {
      const item = record[key];
      if (item === undefined) continue;
      parts.push(`${JSON.stringify(key)}:${write(item, pointer(path, key), stack)}`);
    }
    out = `{${parts.join(',')}}`;
  }
  stack.delete(value);
  return out;
}
