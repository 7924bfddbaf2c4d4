/**
 * Small helpers for writing Tasker's hand-written SQL with Kysely's `sql` tag.
 * Hot paths pass whole batches as arrays (`unnest($1::uuid[], $2::int[], ...)`) so
 * one statement handles any number of rows.
 */
import { sql } from 'kysely';
import type { Kysely, RawBuilder, Transaction } from 'kysely';
import type { DB } from './schema.js';

/** Anything a repository function can run on: the database or an open transaction. */
export type Executor = Kysely<DB> | Transaction<DB>;

/**
 * `'a', 'b'` as SQL literals, for `state IN (...)` lists built from the transition
 * tables. Literals (not parameters) so that the planner can match partial-index
 * predicates such as `WHERE state IN ('pending', 'waiting_for_retry')`. Only ever
 * called with the application's own constants, never with input.
 */
export function literalList(values: readonly string[]): RawBuilder<unknown> {
  if (values.length === 0) throw new RangeError('an IN list needs at least one value');
  return sql.join(values.map((v) => sql.lit(v)));
}

/** `at` as an ISO string for a `timestamptz[]` parameter, or null. */
export function isoOrNull(at: Date | null | undefined): string | null {
  return at ? at.toISOString() : null;
}

/** A duration in milliseconds as an interval expression on a parameter. */
export function millis(ms: number | RawBuilder<unknown>): RawBuilder<unknown> {
  return sql`(${ms}::float8 * interval '1 millisecond')`;
}
