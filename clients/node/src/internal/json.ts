/**
 * JSON on the worker hot path: UTF-8 JSON text in `bytes` fields. Users only see
 * plain values (objects, arrays, strings, numbers, booleans, null).
 */

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Encodes a JSON value as compact UTF-8 bytes. `undefined` (a handler that returns
 * nothing) is JSON null, sent as empty bytes. Throws TypeError for values JSON cannot
 * hold (BigInt, cycles) and for functions or symbols at the top level.
 */
export function encodeJson(value: unknown): Buffer {
  if (value === undefined || value === null) return Buffer.alloc(0);
  const text = JSON.stringify(value);
  if (text === undefined) throw new TypeError(`a ${typeof value} is not a JSON value`);
  return Buffer.from(text, 'utf8');
}

/** Decodes UTF-8 JSON bytes; empty bytes give null. Throws on invalid UTF-8 or JSON. */
export function decodeJson(bytes: Uint8Array): unknown {
  if (bytes.length === 0) return null;
  return JSON.parse(utf8.decode(bytes));
}

/** Decodes bytes expected to hold a JSON object; empty bytes give `{}`. Throws on anything else. */
export function decodeJsonObject(bytes: Uint8Array, what: string): Record<string, unknown> {
  const value = decodeJson(bytes);
  if (value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new TypeError(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}
