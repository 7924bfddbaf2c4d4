/**
 * Turns schema issues into the lines a person reads:
 * `<file or env var>: <key.path>: expected …, got …`.
 */
import type { z } from 'zod';
import { configKeys } from './keys.js';
import { isMapping } from './sources.js';

type Issue = z.core.$ZodIssue;
type PathKey = PropertyKey;

/** Where each dotted key path was set; paths with no entry fall back to their nearest ancestor's. */
export type Provenance = ReadonlyMap<string, string>;

const MAX_SHOWN = 80;
const SECRET_KEYS = new Set(['token']);

function dotted(path: readonly PathKey[]): string {
  return path.map(String).join('.');
}

/** The label of the layer that set `path` (or its nearest ancestor), else `defaults`. */
export function labelFor(provenance: Provenance, path: readonly PathKey[]): string {
  for (let n = path.length; n > 0; n--) {
    const label = provenance.get(dotted(path.slice(0, n)));
    if (label) return label;
  }
  return 'defaults';
}

function valueAt(data: unknown, path: readonly PathKey[]): unknown {
  let node = data;
  for (const key of path) {
    if (isMapping(node) || Array.isArray(node)) node = (node as Record<PropertyKey, unknown>)[key];
    else return undefined;
  }
  return node;
}

function maskUrlPassword(text: string): string {
  return text.replace(/(\/\/[^/@:\s]+:)[^@\s]+@/g, '$1***@');
}

/** A short, secret-free description of a value for an error message. */
export function describeValue(value: unknown, path: readonly PathKey[] = []): string {
  if (value === undefined) return 'nothing';
  if (SECRET_KEYS.has(String(path[path.length - 1]))) return typeof value === 'string' ? 'a string (not shown)' : typeof value;
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') {
    const shown = JSON.stringify(maskUrlPassword(value));
    return shown.length > MAX_SHOWN ? `${shown.slice(0, MAX_SHOWN - 4)}…"` : shown;
  }
  if (Array.isArray(value)) {
    if (value.some((v) => typeof v === 'object' && v !== null)) return `a list of ${value.length}`;
    const shown = JSON.stringify(value);
    return shown.length > MAX_SHOWN ? `a list of ${value.length}` : shown;
  }
  return isMapping(value) ? 'a mapping' : typeof value;
}

const TYPE_NAMES: Record<string, string> = {
  int: 'an integer',
  number: 'a number',
  string: 'a string',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
};

function bound(issue: Extract<Issue, { code: 'too_small' | 'too_big' }>, small: boolean): string {
  const limit = small ? (issue as { minimum: number | bigint }).minimum : (issue as { maximum: number | bigint }).maximum;
  const inclusive = issue.inclusive !== false;
  const op = small ? (inclusive ? '>=' : '>') : inclusive ? '<=' : '<';
  switch (issue.origin) {
    case 'array':
      return small ? `at least ${String(limit)} item(s)` : `at most ${String(limit)} item(s)`;
    case 'string':
      return small ? `at least ${String(limit)} character(s)` : `at most ${String(limit)} character(s)`;
    default:
      return `a number ${op} ${String(limit)}`;
  }
}

function expectation(issue: Issue, value: unknown): string {
  switch (issue.code) {
    case 'invalid_type': {
      const expected = TYPE_NAMES[issue.expected] ?? issue.expected;
      return value === undefined ? `${expected} (the key is required)` : expected;
    }
    case 'too_small':
      return bound(issue, true);
    case 'too_big':
      return bound(issue, false);
    case 'invalid_value':
      return `one of ${issue.values.map((v) => String(v)).join(', ')}`;
    case 'invalid_format':
      return issue.message.startsWith('Invalid') ? `a value in ${issue.format} format` : issue.message;
    case 'custom':
      return issue.message.replace(/^expected /, '');
    default:
      return issue.message;
  }
}

/** The readable problem lines for one schema issue (one per unknown key for `unrecognized_keys`). */
export function formatIssue(issue: Issue, data: unknown, provenance: Provenance): string[] {
  if (issue.code === 'unrecognized_keys') {
    const shape = issue.path.map((k) => (typeof k === 'number' ? '*' : k));
    const allowed = configKeys.objects.get(dotted(shape)) ?? [];
    return issue.keys.map((key) => {
      const path = [...issue.path, key];
      const where = `${labelFor(provenance, path)}: ${dotted(path)}`;
      return `${where}: expected a known key (${allowed.join(', ')}), got unknown key ${JSON.stringify(key)}`;
    });
  }
  // Issues carry their input when parsed with reportInput (cross-key checks set it themselves).
  const value = 'input' in issue ? issue.input : valueAt(data, issue.path);
  const where = `${labelFor(provenance, issue.path)}: ${dotted(issue.path) || '(top level)'}`;
  const got = issue.code === 'custom' && isMapping(value) ? '' : `, got ${describeValue(value, issue.path)}`;
  return [`${where}: expected ${expectation(issue, value)}${got}`];
}
