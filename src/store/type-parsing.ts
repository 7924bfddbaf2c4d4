/**
 * How column values become JavaScript values. Both backends (pg and PGlite) are
 * configured from this file so that a repository sees identical values on either:
 *
 * | PostgreSQL type            | JavaScript value                                          |
 * |----------------------------|-----------------------------------------------------------|
 * | int8 (bigint, bigserial)   | `number` when it is a safe integer, else the exact decimal `string` |
 * | int2, int4, float4, float8 | `number` (driver default on both)                         |
 * | numeric                    | `string` (exact; driver default on both)                  |
 * | timestamptz                | `Date`                                                    |
 * | timestamp (no time zone)   | `Date`, the value read as UTC                             |
 * | date                       | `string` `YYYY-MM-DD` (no time-zone shift)                |
 * | json, jsonb                | parsed JSON                                               |
 * | arrays of the above        | arrays of the element values (nulls kept)                 |
 *
 * Parameters: pass jsonb values as `JSON.stringify(value)` (pg would turn a bare JS
 * array into a PostgreSQL array literal); pass arrays for `$1::uuid[]` as JS arrays.
 */
import pg from 'pg';
import type { CustomTypesConfig } from 'pg';

/** OIDs of the built-in types whose parsing is pinned here. */
export const PgTypeOid = {
  int8: 20,
  int8Array: 1016,
  textArray: 1009,
  date: 1082,
  dateArray: 1182,
  timestamp: 1114,
  timestampArray: 1115,
  timestamptz: 1184,
} as const;

/** int8 text → number when exactly representable, otherwise the decimal string unchanged. */
export function int8FromText(text: string): number | string {
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : text;
}

/** Parsers handed to PGlite's `parsers` option (PGlite applies element parsers to arrays itself). */
export const pgliteParsers: Readonly<Record<number, (text: string) => unknown>> = {
  [PgTypeOid.int8]: int8FromText,
  [PgTypeOid.date]: (text: string) => text,
};

type NestedArray<T> = Array<T | null | NestedArray<T>>;

function mapNested<T>(values: NestedArray<string>, map: (text: string) => T): NestedArray<T> {
  return values.map((v) => (v === null ? null : Array.isArray(v) ? mapNested(v, map) : map(v)));
}

/**
 * A `types` object for `pg.Pool` / `pg.Client`. Per pool, never the global
 * `pg.types.setTypeParser`, so nothing else in the process is affected.
 */
export function createPgTypes(): CustomTypesConfig {
  // pg-types' own typing only admits its TypeId enum; every OID used here is a built-in.
  const baseParser = pg.types.getTypeParser as (oid: number, format?: 'text' | 'binary') => (text: string) => unknown;
  const parseTextArray = baseParser(PgTypeOid.textArray, 'text') as (t: string) => NestedArray<string>;
  const parseTimestamptz = baseParser(PgTypeOid.timestamptz, 'text');
  const timestampAsUtc = (text: string): unknown =>
    /^\d/.test(text) ? parseTimestamptz(`${text}+00`) : parseTimestamptz(text);
  const overrides: Record<number, (text: string) => unknown> = {
    [PgTypeOid.int8]: int8FromText,
    [PgTypeOid.int8Array]: (text) => mapNested(parseTextArray(text), int8FromText),
    [PgTypeOid.date]: (text) => text,
    [PgTypeOid.dateArray]: (text) => parseTextArray(text),
    [PgTypeOid.timestamp]: timestampAsUtc,
    [PgTypeOid.timestampArray]: (text) => mapNested(parseTextArray(text), timestampAsUtc),
  };
  const getTypeParser = ((oid: number, format?: 'text' | 'binary') => {
    const override = (format ?? 'text') === 'text' ? overrides[oid] : undefined;
    return override ?? baseParser(oid, format);
  }) as CustomTypesConfig['getTypeParser'];
  return { getTypeParser };
}
