/**
 * The worker session aggregate (`worker_sessions`) and the lease columns of the
 * steps a session holds. A session row outlives its stream: it names the worker
 * across reconnects until `expires_at`, which every heartbeat pushes forward.
 *
 * Ownership: `instance_id` is the Tasker instance carrying the session's stream.
 * Every write made on behalf of a stream is a compare-and-swap on it, so an
 * instance whose stream was superseded by a resume on another instance finds out
 * on its next write (zero rows) instead of overwriting the new owner.
 *
 * Leases: a step is held by a session while it is `enqueued`/`in_progress` with
 * `session_id` = the session and an unexpired `lease_expires_at`. Heartbeats extend
 * only unexpired leases; an expired one belongs to the reaper.
 */
import { sql } from 'kysely';
import type { RawBuilder } from 'kysely';
import { LEASED_STEP_STATES } from '../domain/step-state.js';
import { PREPARED } from './prepared-statements.js';
import type { WorkerSessionState } from './schema.js';
import type { Executor } from './sql-helpers.js';
import { literalList } from './sql-helpers.js';

/** Session states in which a session may carry a stream and hold leases. */
export const LIVE_SESSION_STATES: readonly WorkerSessionState[] = ['active', 'draining'];

/** A worker session as the engine sees it (the handle hash is never read back). */
export interface SessionRecord {
  readonly id: string;
  readonly workerName: string;
  readonly language: string;
  readonly sdkVersion: string;
  readonly handlers: readonly string[];
  readonly namespaces: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
  readonly maxInFlight: number;
  readonly instanceId: string | null;
  readonly state: WorkerSessionState;
  readonly connected: boolean;
  readonly lastHeartbeatAt: Date;
  readonly expiresAt: Date;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** One attempt of one step leased to a session. */
export interface LeasedStepRef {
  readonly stepId: string;
  readonly attempt: number;
}

/** What a worker declares about itself in Hello (stored on create and on every resume). */
export interface SessionProfile {
  readonly workerName: string;
  readonly language: string;
  readonly sdkVersion: string;
  readonly handlers: readonly string[];
  readonly namespaces: readonly string[];
  readonly labels: Readonly<Record<string, string>>;
  readonly maxInFlight: number;
}

/** A new session row for {@link insertSession}. */
export interface NewSession extends SessionProfile {
  readonly id: string;
  /** sha256 (hex) of the session handle. */
  readonly handleHash: string;
  readonly instanceId: string;
  readonly now: Date;
  readonly expiresAt: Date;
}

interface SessionRow {
  id: string;
  worker_name: string;
  language: string;
  sdk_version: string;
  handlers: string[];
  namespaces: string[];
  labels: Record<string, string>;
  max_in_flight: number;
  instance_id: string | null;
  state: WorkerSessionState;
  connected: boolean;
  last_heartbeat_at: Date;
  expires_at: Date;
  created_at: Date;
  updated_at: Date;
}

const SESSION_COLUMNS = sql`
  id, worker_name, language, sdk_version, handlers, namespaces, labels, max_in_flight, instance_id, state,
  connected, last_heartbeat_at, expires_at, created_at, updated_at`;

function toSessionRecord(r: SessionRow): SessionRecord {
  return {
    id: r.id,
    workerName: r.worker_name,
    language: r.language,
    sdkVersion: r.sdk_version,
    handlers: r.handlers,
    namespaces: r.namespaces,
    labels: r.labels ?? {},
    maxInFlight: r.max_in_flight,
    instanceId: r.instance_id,
    state: r.state,
    connected: r.connected,
    lastHeartbeatAt: r.last_heartbeat_at,
    expiresAt: r.expires_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** Inserts a new `active`, connected session owned by `instanceId`. */
export async function insertSession(db: Executor, s: NewSession): Promise<SessionRecord> {
  const { rows } = await sql<SessionRow>`
    insert into worker_sessions (id, handle_hash, worker_name, language, sdk_version, handlers, namespaces, labels,
                                 max_in_flight, instance_id, state, connected, last_heartbeat_at, expires_at,
                                 created_at, updated_at)
    values (${s.id}::uuid, ${s.handleHash}, ${s.workerName}, ${s.language}, ${s.sdkVersion}, ${[...s.handlers]}::text[],
            ${[...s.namespaces]}::text[], ${JSON.stringify(s.labels)}::jsonb, ${s.maxInFlight}::int, ${s.instanceId},
            'active', true, ${s.now}::timestamptz, ${s.expiresAt}::timestamptz, ${s.now}::timestamptz, ${s.now}::timestamptz)
    returning ${SESSION_COLUMNS}`.execute(db);
  return toSessionRecord(rows[0]!);
}

/** The session with id `id` in any state, or null. */
export async function findSession(db: Executor, id: string): Promise<SessionRecord | null> {
  const { rows } = await sql<SessionRow>`select ${SESSION_COLUMNS} from worker_sessions where id = ${id}::uuid`.execute(db);
  return rows[0] ? toSessionRecord(rows[0]) : null;
}

/** Options of {@link attachSession}. */
export interface AttachSessionOptions {
  readonly handleHash: string;
  readonly instanceId: string;
  readonly profile: SessionProfile;
  readonly now: Date;
  readonly expiresAt: Date;
  readonly leaseExpiresAt: Date;
}

/** What {@link attachSession} found: the session now owned by the caller and the steps it still holds. */
export interface AttachedSessionRow {
  readonly session: SessionRecord;
  /** The session's instance before this attach (null when it was disconnected). */
  readonly previousInstanceId: string | null;
  readonly leased: readonly LeasedStepRef[];
}

/**
 * Resumes the live session whose handle hashes to `handleHash`: takes it over for
 * `instanceId` (whichever instance had it), marks it connected, refreshes its profile
 * and expiry, and extends its unexpired leases — one statement. Returns null when no
 * session has that handle or it is no longer live (closed, expired, or past
 * `expires_at` but not yet reaped).
 */
export async function attachSession(db: Executor, o: AttachSessionOptions): Promise<AttachedSessionRow | null> {
  const p = o.profile;
  const { rows } = await sql<SessionRow & { previous_instance_id: string | null; leased: [string, number][] | null }>`
    with target as (
      select id, instance_id from worker_sessions
      where handle_hash = ${o.handleHash} and state in (${literalList(LIVE_SESSION_STATES)})
        and expires_at > ${o.now}::timestamptz
      for update
    ),
    attached as (
      update worker_sessions w set
        instance_id = ${o.instanceId}, connected = true, last_heartbeat_at = ${o.now}::timestamptz,
        expires_at = ${o.expiresAt}::timestamptz, updated_at = ${o.now}::timestamptz,
        worker_name = ${p.workerName}, language = ${p.language}, sdk_version = ${p.sdkVersion},
        handlers = ${[...p.handlers]}::text[], namespaces = ${[...p.namespaces]}::text[],
        labels = ${JSON.stringify(p.labels)}::jsonb, max_in_flight = ${p.maxInFlight}::int
      from target t where w.id = t.id
      returning w.*, t.instance_id as previous_instance_id
    ),
    extended as (${extendLeases(sql`attached`, o.now, o.leaseExpiresAt)})
    select a.id, a.worker_name, a.language, a.sdk_version, a.handlers, a.namespaces, a.labels, a.max_in_flight,
           a.instance_id, a.state, a.connected, a.last_heartbeat_at, a.expires_at, a.created_at, a.updated_at,
           a.previous_instance_id,
           (select json_agg(json_build_array(e.id, e.attempts) order by e.id) from extended e) as leased
    from attached a`.execute(db);
  const row = rows[0];
  if (!row) return null;
  return {
    session: toSessionRecord(row),
    previousInstanceId: row.previous_instance_id,
    leased: (row.leased ?? []).map(([stepId, attempt]) => ({ stepId, attempt })),
  };
}

/**
 * The lease-extension CTE body shared by attach and heartbeat: locks the session's
 * unexpired leased steps in id order (the order every other step locker uses, so a
 * heartbeat cannot deadlock with a group commit) and pushes their leases to
 * `leaseExpiresAt`. `sessions` names a CTE with an `id` column.
 */
function extendLeases(sessions: RawBuilder<unknown>, now: Date, leaseExpiresAt: Date): RawBuilder<unknown> {
  return sql`
    update workflow_steps s set lease_expires_at = greatest(s.lease_expires_at, ${leaseExpiresAt}::timestamptz)
    from (
      select w.id from workflow_steps w
      where w.session_id in (select id from ${sessions})
        and w.state in (${literalList(LEASED_STEP_STATES)}) and w.lease_expires_at > ${now}::timestamptz
      order by w.id
      for update of w
    ) l
    where s.id = l.id
    returning s.id, s.attempts`;
}

/** Options of {@link heartbeatSession}. */
export interface HeartbeatOptions {
  readonly sessionId: string;
  readonly instanceId: string;
  readonly now: Date;
  readonly expiresAt: Date;
  readonly leaseExpiresAt: Date;
}

/** What {@link heartbeatSession} did: whether the caller still owns the live session, and its leases after renewal. */
export interface HeartbeatResult {
  readonly owned: boolean;
  readonly leased: readonly LeasedStepRef[];
}

/**
 * Records a heartbeat: pushes the session's `last_heartbeat_at` and `expires_at` and
 * extends every unexpired lease it holds, in one statement. A compare-and-swap on
 * `instance_id` and liveness: `owned` false means the session expired or was resumed
 * on another stream, and nothing was changed.
 *
 * Runs for every Heartbeat of every session (about 200 a second with 1,000 sessions),
 * so it is a prepared statement: its text is fixed (the IN lists are constants).
 */
export async function heartbeatSession(db: Executor, o: HeartbeatOptions): Promise<HeartbeatResult> {
  const { rows } = await sql<{ owned: boolean; leased: [string, number][] | null }>`${PREPARED}
    with beat as (
      update worker_sessions set last_heartbeat_at = ${o.now}::timestamptz, expires_at = ${o.expiresAt}::timestamptz,
                                 updated_at = ${o.now}::timestamptz
      where id = ${o.sessionId}::uuid and instance_id = ${o.instanceId}
        and state in (${literalList(LIVE_SESSION_STATES)}) and expires_at > ${o.now}::timestamptz
      returning id
    ),
    extended as (${extendLeases(sql`beat`, o.now, o.leaseExpiresAt)})
    select exists (select 1 from beat) as owned,
           (select json_agg(json_build_array(e.id, e.attempts) order by e.id) from extended e) as leased`.execute(db);
  const row = rows[0];
  return {
    owned: row?.owned === true,
    leased: (row?.leased ?? []).map(([stepId, attempt]) => ({ stepId, attempt })),
  };
}

/** The attempts currently leased to `sessionId` (unexpired leases only), in step id order. */
export async function listLeasedSteps(db: Executor, sessionId: string, now: Date): Promise<LeasedStepRef[]> {
  const { rows } = await sql<{ id: string; attempts: number }>`
    select id, attempts from workflow_steps
    where session_id = ${sessionId}::uuid and state in (${literalList(LEASED_STEP_STATES)})
      and lease_expires_at > ${now}::timestamptz
    order by id`.execute(db);
  return rows.map((r) => ({ stepId: r.id, attempt: r.attempts }));
}

/** Options of the ownership-checked session writes. */
export interface OwnedSessionWrite {
  readonly sessionId: string;
  readonly instanceId: string;
  readonly now: Date;
}

/**
 * Records a new credit (`Credit.slots`) as the session's `max_in_flight`. Returns false
 * when `instanceId` no longer owns the live session. Runs for every Credit message: a
 * prepared statement (fixed text).
 */
export async function updateSessionCredit(db: Executor, o: OwnedSessionWrite & { maxInFlight: number }): Promise<boolean> {
  const result = await sql`${PREPARED}
    update worker_sessions set max_in_flight = ${o.maxInFlight}::int, updated_at = ${o.now}::timestamptz
    where id = ${o.sessionId}::uuid and instance_id = ${o.instanceId}
      and state in (${literalList(LIVE_SESSION_STATES)})`.execute(db);
  return Number(result.numAffectedRows ?? 0) > 0;
}

/**
 * Moves an `active` session to `draining` (the worker sent Drain: no new steps).
 * Returns false when `instanceId` no longer owns it or it is not active.
 */
export async function markSessionDraining(db: Executor, o: OwnedSessionWrite): Promise<boolean> {
  const result = await sql`
    update worker_sessions set state = 'draining', updated_at = ${o.now}::timestamptz
    where id = ${o.sessionId}::uuid and instance_id = ${o.instanceId} and state = 'active'`.execute(db);
  return Number(result.numAffectedRows ?? 0) > 0;
}

/**
 * Marks the session's stream gone (`connected = false`, no instance) while the session
 * itself lives on until `expires_at`, so the worker can resume. Only if `instanceId`
 * still owns it: a stream superseded by a resume elsewhere changes nothing.
 */
export async function detachSession(db: Executor, o: OwnedSessionWrite): Promise<boolean> {
  const result = await sql`
    update worker_sessions set connected = false, instance_id = null, updated_at = ${o.now}::timestamptz
    where id = ${o.sessionId}::uuid and instance_id = ${o.instanceId}`.execute(db);
  return Number(result.numAffectedRows ?? 0) > 0;
}

/**
 * Ends a session that drained and closed its stream: state `closed`, disconnected.
 * Leases it still holds are abandoned, so they are made due now (`lease_expires_at =
 * now`) and the reaper returns those steps to ready on its next tick instead of after
 * a full lease. Only if `instanceId` still owns the session. One statement.
 */
export async function closeSession(db: Executor, o: OwnedSessionWrite): Promise<boolean> {
  const { rows } = await sql<{ closed: boolean }>`
    with closed as (
      update worker_sessions set state = 'closed', connected = false, instance_id = null,
                                 updated_at = ${o.now}::timestamptz
      where id = ${o.sessionId}::uuid and instance_id = ${o.instanceId}
        and state in (${literalList(LIVE_SESSION_STATES)})
      returning id
    ),
    released as (
      update workflow_steps s set lease_expires_at = ${o.now}::timestamptz
      from closed c
      where s.session_id = c.id and s.state in (${literalList(LEASED_STEP_STATES)})
        and s.lease_expires_at > ${o.now}::timestamptz
    )
    select exists (select 1 from closed) as closed`.execute(db);
  return rows[0]?.closed === true;
}

/** Disconnects every session `instanceId` still owns (server shutdown). Returns how many. */
export async function detachInstanceSessions(db: Executor, instanceId: string, now: Date): Promise<number> {
  const result = await sql`
    update worker_sessions set connected = false, instance_id = null, updated_at = ${now}::timestamptz
    where instance_id = ${instanceId}`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

/**
 * Gives up leases the session was granted but its worker never received (the stream
 * ended between claim and send): their leases are made due now, so the reaper returns
 * the steps to ready on its next tick. Only attempts still leased to the session move.
 */
export async function abandonLeases(db: Executor, sessionId: string, steps: readonly LeasedStepRef[], now: Date): Promise<number> {
  if (steps.length === 0) return 0;
  const result = await sql`
    update workflow_steps s set lease_expires_at = ${now}::timestamptz
    from unnest(${steps.map((x) => x.stepId)}::uuid[], ${steps.map((x) => x.attempt)}::int[]) as i(id, attempt)
    where s.id = i.id and s.attempts = i.attempt and s.session_id = ${sessionId}::uuid
      and s.state in (${literalList(LEASED_STEP_STATES)}) and s.lease_expires_at > ${now}::timestamptz`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}
