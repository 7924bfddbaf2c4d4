/**
 * The sweeps the reaper runs over leases, timeouts and sessions (renewing leases
 * and listing a session's leases are in `sessions.ts`). Every sweep selects with
 * `FOR UPDATE SKIP LOCKED`, so reapers on several instances split the work instead
 * of blocking on (or double-processing) the same rows.
 */
import { sql } from 'kysely';
import { LEASED_STEP_STATES } from '../domain/step-state.js';
import type { Executor } from './sql-helpers.js';
import { literalList } from './sql-helpers.js';
import { lockStepsWhere } from './steps.js';
import type { LockedStep } from './steps.js';

/** Locks up to `limit` running steps whose timeout deadline has passed (skipping rows others hold). */
export function lockTimedOutSteps(trx: Executor, now: Date, limit: number): Promise<LockedStep[]> {
  return lockStepsWhere(
    trx,
    sql`s.state in (${literalList(LEASED_STEP_STATES)}) and s.deadline_at <= ${now}::timestamptz`,
    { skipLocked: true, limit, orderBy: sql`s.deadline_at` },
  );
}

/**
 * Locks up to `limit` running steps whose lease has run out, or that are leased to
 * one of `expiredSessions` (skipping rows others hold).
 */
export function lockExpiredLeases(
  trx: Executor,
  now: Date,
  limit: number,
  expiredSessions: readonly string[] = [],
): Promise<LockedStep[]> {
  const leased = literalList(LEASED_STEP_STATES);
  const bySession =
    expiredSessions.length > 0 ? sql`or s.session_id = any(${[...expiredSessions]}::uuid[])` : sql``;
  return lockStepsWhere(trx, sql`s.state in (${leased}) and (s.lease_expires_at <= ${now}::timestamptz ${bySession})`, {
    skipLocked: true,
    limit,
    orderBy: sql`s.lease_expires_at`,
  });
}

/**
 * Marks up to `limit` sessions still recorded as connected but silent since before
 * `silentBefore` as disconnected, with no instance: the instance that carried their
 * streams stopped without detaching them (it crashed or lost its network; a live
 * instance ends a silent stream itself). The sessions live on until `expires_at`, so
 * their workers can resume on any instance. Returns their ids.
 */
export async function detachSilentSessions(db: Executor, silentBefore: Date, now: Date, limit: number): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    with silent as (
      select id from worker_sessions
      where connected and last_heartbeat_at < ${silentBefore}::timestamptz
      order by last_heartbeat_at
      limit ${limit}::int
      for update skip locked
    )
    update worker_sessions w set connected = false, instance_id = null, updated_at = ${now}::timestamptz
    from silent where w.id = silent.id
    returning w.id`.execute(db);
  return rows.map((r) => r.id);
}

/**
 * Marks up to `limit` active or draining sessions past `expires_at` as expired and
 * disconnected; returns their ids. Their leases are released by the caller.
 */
export async function expireSessions(db: Executor, now: Date, limit: number): Promise<string[]> {
  const { rows } = await sql<{ id: string }>`
    with due as (
      select id from worker_sessions
      where state in ('active', 'draining') and expires_at < ${now}::timestamptz
      order by expires_at
      limit ${limit}::int
      for update skip locked
    )
    update worker_sessions w set state = 'expired', connected = false, instance_id = null, updated_at = ${now}::timestamptz
    from due where w.id = due.id
    returning w.id`.execute(db);
  return rows.map((r) => r.id);
}
