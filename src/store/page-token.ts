/**
 * Opaque page tokens for keyset pagination. A token names the last row of the page
 * just returned — its sort key `(at, id)` — so the next page starts strictly after
 * it, whatever was inserted or deleted meanwhile: rows are neither repeated nor
 * skipped, unlike OFFSET paging. It also carries a digest of the query's filters, so
 * a token cannot be replayed against a different query.
 *
 * Wire form: base64url (no padding) of `{"v":1,"at":"<UTC timestamp, microseconds>",
 * "id":"<uuid>","q":"<filter digest>"}`. Callers must treat it as opaque.
 */
import { createHash } from 'node:crypto';
import { ValidationError } from '../domain/errors.js';
import { isUuid } from '../domain/ids.js';

/** Error code of a token that is malformed, forged, or from another query. */
export const INVALID_PAGE_TOKEN = 'INVALID_PAGE_TOKEN';

/** Position in a list sorted by `(at DESC, id DESC)`: the last row already returned. */
export interface PagePosition {
  /** The row's timestamp as exact UTC text with microseconds, `YYYY-MM-DDTHH:MM:SS.ffffffZ`. */
  readonly at: string;
  readonly id: string;
}

const VERSION = 1;
/** Tokens are short; anything longer is not one of ours. */
const MAX_TOKEN_LENGTH = 512;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const EXACT_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/**
 * A short digest of a query's filters, to bind tokens to them. `filters` must be
 * plain JSON data in a deterministic key order (the caller builds it the same way
 * every time).
 */
export function filterDigest(filters: unknown): string {
  return createHash('sha256').update(JSON.stringify(filters)).digest('base64url').slice(0, 16);
}

/** The token for the page after `position`, under the query whose filter digest is `digest`. */
export function encodePageToken(position: PagePosition, digest: string): string {
  if (!EXACT_UTC.test(position.at) || !isUuid(position.id)) {
    throw new RangeError(`not a page position: ${JSON.stringify(position)}`);
  }
  return Buffer.from(JSON.stringify({ v: VERSION, at: position.at, id: position.id, q: digest })).toString('base64url');
}

function invalid(reason: string): ValidationError {
  return new ValidationError(`invalid page token: ${reason}`, [{ path: 'page_token', message: reason }], INVALID_PAGE_TOKEN);
}

function parse(token: string): Record<string, unknown> {
  if (token.length > MAX_TOKEN_LENGTH || !BASE64URL.test(token)) throw invalid('not a page token');
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw invalid('not a page token');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw invalid('not a page token');
  return value as Record<string, unknown>;
}

/**
 * The position a token names. Throws `ValidationError` with code
 * `INVALID_PAGE_TOKEN` when the token is malformed or was issued for other filters.
 */
export function decodePageToken(token: string, digest: string): PagePosition {
  const body = parse(token);
  const { v, at, id, q } = body;
  if (v !== VERSION || typeof at !== 'string' || !EXACT_UTC.test(at) || Number.isNaN(Date.parse(at))) {
    throw invalid('not a page token');
  }
  if (typeof id !== 'string' || !isUuid(id)) throw invalid('not a page token');
  if (q !== digest) throw invalid('the token belongs to a query with other filters');
  return { at, id };
}
