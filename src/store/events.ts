/**
 * Lifecycle events (`tasker_events`) and the notifications sent when a transaction
 * made steps ready or appended events. Most events are appended by the same
 * statement that makes the change they describe (see `step-changes.ts`,
 * `tasks.ts`); this file holds the reads and NOTIFY.
 */
import { sql } from 'kysely';
import type { RawBuilder } from 'kysely';
import type { EventType, LifecycleEvent } from '../domain/events.js';
import { PREPARED } from './prepared-statements.js';
import type { Executor } from './sql-helpers.js';

/**
 * Channel woken when steps became claimable. Payload: a comma-separated list of
 * handlers ('' = any), optionally preceded by the sender's origin tag and a space
 * (`<origin> h1,h2`; handlers never contain spaces) so that the sender can skip the
 * echo of work it already dispatched itself.
 */
export const READY_CHANNEL = 'tasker_ready';
/** Channel woken when events were appended; the payload is the highest event id written. */
export const EVENTS_CHANNEL = 'tasker_events';

/** PostgreSQL refuses NOTIFY payloads of 8000 bytes or more. */
const MAX_NOTIFY_PAYLOAD = 7900;

/**
 * What a transaction did that other instances should hear about at commit: handlers
 * whose steps became claimable and the highest event id appended. Every engine write
 * path fills one and passes it to {@link notifyEffects} before committing.
 */
export class TxEffects {
  readonly readyHandlers = new Set<string>();
  maxEventId = 0;
  /** The notifications were queued by a statement of the transaction ({@link notifySelect}). */
  sent = false;

  /**
   * @param origin tag put before the handlers of the `tasker_ready` notification: set
   * by writers whose instance wakes its own sessions directly after the commit.
   */
  constructor(readonly origin: string | null = null) {}

  /** Records handlers with newly claimable steps. */
  addReady(handlers: Iterable<string | null | undefined>): void {
    for (const h of handlers) if (h) this.readyHandlers.add(h);
  }

  /** Records that events up to `id` were appended. */
  addEvent(id: number | string | null | undefined): void {
    const n = typeof id === 'string' ? Number(id) : id;
    if (n && n > this.maxEventId) this.maxEventId = n;
  }
}

function readyPayload(effects: TxEffects): string {
  let handlers = [...effects.readyHandlers].sort().join(',');
  if (handlers.length > MAX_NOTIFY_PAYLOAD) handlers = '';
  return effects.origin ? `${effects.origin} ${handlers}` : handlers;
}

/**
 * Queues the notifications for `effects` inside the current transaction; PostgreSQL
 * delivers them only at commit (and drops them on rollback). One round trip, or none
 * when there is nothing to say or a statement already queued them ({@link notifySelect}).
 */
export async function notifyEffects(trx: Executor, effects: TxEffects): Promise<void> {
  if (effects.sent) return;
  const ready = effects.readyHandlers.size > 0;
  const events = effects.maxEventId > 0;
  if (!ready && !events) return;
  await sql`${PREPARED}
    select
      case when ${ready}::boolean then pg_notify(${READY_CHANNEL}, ${readyPayload(effects)}::text) end,
      case when ${events}::boolean then pg_notify(${EVENTS_CHANNEL}, ${String(effects.maxEventId)}::text) end`.execute(trx);
}

/**
 * Select-list expressions that queue the notifications of `effects` from inside the
 * last write statement of a transaction — saving the round trip of
 * {@link notifyEffects}, which then does nothing. `statementMaxEventId` is the
 * statement's own highest appended event id (SQL, may be NULL). Call only for the
 * statement whose result the caller awaits last before committing.
 */
export function notifySelect(effects: TxEffects, statementMaxEventId: RawBuilder<unknown>): RawBuilder<unknown> {
  effects.sent = true;
  const ready = effects.readyHandlers.size > 0;
  return sql`
    case when ${ready}::boolean then pg_notify(${READY_CHANNEL}, ${readyPayload(effects)}::text) end as notified_ready,
    (select case when m > 0 then pg_notify(${EVENTS_CHANNEL}, m::text) end
     from (select greatest(${effects.maxEventId}::bigint, coalesce(${statementMaxEventId}, 0)) as m) n) as notified_events`;
}

/** A `tasker_events` row as read by the event-log queries (here and `event-log.ts`). */
export interface EventRow {
  id: number | string;
  event_type: EventType;
  namespace: string;
  task_name: string;
  task_id: string;
  step_id: string | null;
  step_name: string | null;
  payload: Record<string, unknown> | null;
  created_at: Date;
}

/** Maps an event row to the domain's lifecycle event. */
export function toEvent(row: EventRow): LifecycleEvent {
  return {
    id: Number(row.id),
    kind: row.event_type,
    namespace: row.namespace,
    taskName: row.task_name,
    taskId: row.task_id,
    stepId: row.step_id,
    stepName: row.step_name,
    payload: row.payload ?? {},
    createdAt: row.created_at,
  };
}

/** Filter of {@link readEvents}. */
export interface ReadEventsOptions {
  /** Only events with a greater id (the cursor). Default 0. */
  readonly afterId?: number;
  readonly taskId?: string;
  readonly limit?: number;
}

/** Events in id order after a cursor, optionally of one task. */
export async function readEvents(db: Executor, options: ReadEventsOptions = {}): Promise<LifecycleEvent[]> {
  const afterId = options.afterId ?? 0;
  const limit = options.limit ?? 1000;
  // Two shapes rather than `($1 is null or task_id = $1)`, so each uses its index (pkey / tasker_events_task_idx).
  const byTask = options.taskId ? sql`and task_id = ${options.taskId}::uuid` : sql``;
  const result = await sql<EventRow>`
    select id, event_type, namespace, task_name, task_id, step_id, step_name, payload, created_at
    from tasker_events
    where id > ${afterId} ${byTask}
    order by id
    limit ${limit}`.execute(db);
  return result.rows.map(toEvent);
}
