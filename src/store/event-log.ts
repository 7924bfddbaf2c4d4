/**
 * Reads of the event log (`tasker_events`) for the event bus and the streams built on
 * it (`engine/event-bus.ts`, `engine/task-watch.ts`).
 *
 * Event ids come from an identity sequence, so an id is taken when a row is inserted
 * but the row becomes visible only when its transaction commits: a reader can see id
 * 20 before id 15 (or never see 15, if its transaction rolled back). The bus therefore
 * reads the rows after its cursor together with the snapshot they were read in
 * ({@link readEventsAfter}): an invisible id below a visible one is either rolled back
 * or belongs to a transaction listed as running in that snapshot (the engine writes
 * every event in a statement that has already written, so the writing transaction has
 * its transaction id before it takes an event id). Once every transaction running then
 * has finished, the missing ids are final. See `EventBus` for the rule.
 */
import { sql } from 'kysely';
import type { LifecycleEvent } from '../domain/events.js';
import type { EventRow } from './events.js';
import { toEvent } from './events.js';
import { PREPARED } from './prepared-statements.js';
import type { Executor } from './sql-helpers.js';

/** A PostgreSQL snapshot as `pg_current_snapshot()` reports it; xids as decimal text. */
export interface SnapshotInfo {
  readonly xmin: string;
  readonly xmax: string;
  /** Transactions running when the snapshot was taken (our own excluded). */
  readonly running: ReadonlySet<string>;
}

/** Filters of {@link readEventRange}; they combine with AND, absent/empty = any. */
export interface EventRangeFilter {
  readonly namespace?: string | null;
  readonly taskName?: string | null;
  readonly taskId?: string | null;
  readonly eventTypes?: readonly string[] | null;
  /** Only these namespaces (the caller's token); null = every namespace. */
  readonly namespaces?: readonly string[] | null;
}

const EVENT_COLUMNS = sql`id, event_type, namespace, task_name, task_id, step_id, step_name, payload, created_at`;

/** Parses `xmin:xmax:xip,xip` (the text form of pg_snapshot). */
export function parseSnapshot(text: string): SnapshotInfo {
  const [xmin = '0', xmax = '0', xip = ''] = text.split(':');
  return { xmin, xmax, running: new Set(xip.split(',').filter((x) => x.length > 0)) };
}

/**
 * The highest event id visible now and the snapshot it was read in (one statement,
 * so both describe the same instant). `maxId` is 0 for an empty log.
 */
export async function readEventHead(db: Executor): Promise<{ maxId: number; snapshot: SnapshotInfo }> {
  const { rows } = await sql<{ max_id: number | string | null; snap: string }>`
    select (select max(id) from tasker_events) as max_id, pg_current_snapshot()::text as snap`.execute(db);
  const row = rows[0];
  return { maxId: Number(row?.max_id ?? 0), snapshot: parseSnapshot(row?.snap ?? '0:0:') };
}

/**
 * Up to `limit` events with id > `afterId` in id order, and the snapshot of the
 * statement that read them (one round trip; the lateral join keeps the snapshot row
 * when there is no event). Served by `tasker_events_pkey`.
 */
export async function readEventsAfter(
  db: Executor,
  afterId: number,
  limit: number,
): Promise<{ events: LifecycleEvent[]; snapshot: SnapshotInfo }> {
  const { rows } = await sql<Partial<EventRow> & { snap: string }>`${PREPARED}
    select s.snap, e.*
    from (select pg_current_snapshot()::text as snap) s
    left join lateral (
      select ${EVENT_COLUMNS} from tasker_events where id > ${afterId}::bigint order by id limit ${limit}::int
    ) e on true
    order by e.id`.execute(db);
  const snapshot = parseSnapshot(rows[0]?.snap ?? '0:0:');
  const events = rows.filter((r) => r.id !== null && r.id !== undefined).map((r) => toEvent(r as EventRow));
  return { events, snapshot };
}

/**
 * Events with `afterId < id <= throughId` matching `filter`, in id order, at most
 * `limit`. The caller only asks for ranges whose ids are final (at or below the
 * bus's cursor), so no snapshot is needed. With a task id it is served by
 * `tasker_events_task_idx`; otherwise by the primary key.
 */
export async function readEventRange(
  db: Executor,
  range: { afterId: number; throughId: number; limit: number },
  filter: EventRangeFilter = {},
): Promise<LifecycleEvent[]> {
  if (range.throughId <= range.afterId) return [];
  const where = [sql`id > ${range.afterId}::bigint`, sql`id <= ${range.throughId}::bigint`];
  if (filter.taskId) where.push(sql`task_id = ${filter.taskId}::uuid`);
  if (filter.namespace) where.push(sql`namespace = ${filter.namespace}`);
  if (filter.taskName) where.push(sql`task_name = ${filter.taskName}`);
  if (filter.eventTypes && filter.eventTypes.length > 0) where.push(sql`event_type = any(${[...filter.eventTypes]}::text[])`);
  if (filter.namespaces) where.push(sql`namespace = any(${[...filter.namespaces]}::text[])`);
  const { rows } = await sql<EventRow>`
    select ${EVENT_COLUMNS} from tasker_events
    where ${sql.join(where, sql` and `)}
    order by id
    limit ${range.limit}::int`.execute(db);
  return rows.map(toEvent);
}

/** The oldest event id still stored, or null when the log is empty. */
export async function oldestEventId(db: Executor): Promise<number | null> {
  const { rows } = await sql<{ min_id: number | string | null }>`select min(id) as min_id from tasker_events`.execute(db);
  const min = rows[0]?.min_id;
  return min === null || min === undefined ? null : Number(min);
}

/** Whether task `taskId` has an event with id > `afterId` (e.g. a repair after a terminal state). */
export async function taskHasEventsAfter(db: Executor, taskId: string, afterId: number): Promise<boolean> {
  const { rows } = await sql<{ found: boolean }>`
    select exists (select 1 from tasker_events where task_id = ${taskId}::uuid and id > ${afterId}::bigint) as found`.execute(db);
  return rows[0]?.found === true;
}

/**
 * Stored results of complete steps: of the steps in `stepIds`, or of every complete
 * step of `taskId` when `stepIds` is null. A complete step never changes again, so its
 * stored result is the one its completion event announced.
 */
export async function readStepResults(
  db: Executor,
  taskId: string,
  stepIds: readonly string[] | null,
): Promise<Map<string, unknown>> {
  const which = stepIds === null ? sql`` : sql`and id = any(${[...stepIds]}::uuid[])`;
  const { rows } = await sql<{ id: string; result: unknown }>`
    select id, result from workflow_steps
    where task_id = ${taskId}::uuid and state = 'complete' ${which}`.execute(db);
  return new Map(rows.map((r) => [r.id, r.result]));
}
