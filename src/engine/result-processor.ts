/**
 * The result processor: one queue of worker reports shared by every stream on this
 * instance, committed in groups and acknowledged only after commit.
 *
 * Flow: streams `submit` reports; a group is cut from the queue (at most
 * `groupCommitMax` reports, from any number of streams) and committed as ONE
 * transaction through `applyOutcomeGroup`; after the commit every stream of the
 * group gets one AckBatch with its acks, in report order, the attempts that ended
 * stop counting against their session's credit, and the dispatcher is told which
 * sessions can take more and which handlers have newly ready steps (so local
 * sessions get them without waiting for the `tasker_ready` notification). While a group commits the next one is collected; it starts
 * as soon as a commit slot is free and either the queue is full enough, the previous
 * group finished, or `groupCommitDelayMs` passed. An idle processor commits at once.
 *
 * Ordering: reports about one step are applied in the order they arrived. Groups may
 * overlap (up to `maxConcurrentGroups`), but a report whose step is part of a group
 * still committing waits for a later group.
 *
 * Failure: transient failures are retried inside `applyOutcomeGroup`; a group that
 * still fails sends no acks. The streams concerned are ended with UNAVAILABLE so their
 * SDKs reconnect and resend the unacknowledged reports (acked DUPLICATE if, after
 * all, they had been committed).
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Clock } from '../domain/clock.js';
import { UnavailableError } from '../domain/errors.js';
import type { BatchCompletion } from '../store/batches.js';
import type { DB } from '../store/schema.js';
import type { OutcomeAck, OutcomeReport, ReadyWork } from './outcomes.js';
import { applyOutcomeGroup } from './outcomes.js';
import type { AttachedSession } from './attached-session.js';

/** Why a report was refused (the proto's RejectReason, in domain words). */
export type RejectReasonCode =
  | 'stale_attempt'
  | 'unknown_step'
  | 'not_leased_to_session'
  | 'step_not_running'
  | 'invalid_payload'
  | 'payload_too_large'
  | 'task_cancelled';

/** The fate of one report, sent to its worker after commit. */
export interface ReportAck {
  readonly reportId: string;
  readonly stepId: string;
  readonly attempt: number;
  readonly status: 'accepted' | 'duplicate' | 'rejected';
  /** Set only when `status` is `rejected`. */
  readonly reason: RejectReasonCode | null;
  readonly message: string;
}

/** What one ReportBatch contributes: reports to commit, reports refused before reaching the database, batch completions. */
export interface ReportSubmission {
  readonly reports: readonly OutcomeReport[];
  /** Reports refused by validation (size, JSON); acked in order with the rest, no effect. */
  readonly refused: readonly ReportAck[];
  readonly batches: readonly BatchCompletion[];
}

/** Options of {@link ResultProcessor}. */
export interface ResultProcessorOptions {
  readonly db: Kysely<DB>;
  readonly clock: Clock;
  readonly logger: Logger;
  /** `engine.group_commit_max`: most reports per commit. */
  readonly groupCommitMax: number;
  /** `engine.group_commit_delay_ms`: longest wait before a waiting group starts next to a running one. */
  readonly groupCommitDelayMs: number;
  /** Groups committing at once. Default 2. */
  readonly maxConcurrentGroups?: number;
  /**
   * Called after every commit that changed something: the sessions whose credit opened
   * and the handlers that got claimable steps (dispatch at once), and the completions
   * it committed (watchers on this instance read at once, with the results in hand).
   */
  readonly onCommitted?: (committed: CommittedGroup) => void;
  /** Tags the `tasker_ready` notifications of the commits, so this instance's wake-ups can skip their echo. */
  readonly notifyOrigin?: string | null;
}

/** What a group commit made possible, for the dispatcher. */
export interface CommittedGroup {
  /** Sessions whose credit opened (steps they held ended). */
  readonly opened: readonly AttachedSession[];
  /** Handlers, with their namespace, that have newly claimable steps. */
  readonly ready: readonly ReadyWork[];
  /** At least one report was accepted: the transaction appended lifecycle events. */
  readonly changed: boolean;
  /** Steps completed by accepted reports, with their results as JSON text (as stored). */
  readonly completed: readonly CommittedResult[];
}

/** A step completed by a committed report and its result as JSON text. */
export interface CommittedResult {
  readonly stepId: string;
  readonly resultJson: string;
}

type Item =
  | { readonly kind: 'report'; readonly session: AttachedSession; readonly report: OutcomeReport }
  | { readonly kind: 'refused'; readonly session: AttachedSession; readonly ack: ReportAck }
  | { readonly kind: 'batch'; readonly session: AttachedSession; readonly completion: BatchCompletion };

const REJECTION: Readonly<Record<NonNullable<OutcomeAck['reason']>, RejectReasonCode>> = {
  stale_attempt: 'stale_attempt',
  unknown_step: 'unknown_step',
  not_leased_to_session: 'not_leased_to_session',
  step_not_running: 'step_not_running',
  task_cancelled: 'task_cancelled',
  invalid_report: 'invalid_payload',
};

/** Rejections after which the reported attempt is no longer held by the session. */
const RELEASING_REJECTIONS: ReadonlySet<RejectReasonCode> = new Set([
  'stale_attempt',
  'unknown_step',
  'not_leased_to_session',
  'step_not_running',
  'task_cancelled',
]);

function stepKey(item: Item): string | null {
  return item.kind === 'report' ? item.report.stepId : item.kind === 'refused' ? item.ack.stepId : null;
}

/** Group commit of worker reports; see the file comment. */
export class ResultProcessor {
  readonly #o: ResultProcessorOptions;
  readonly #maxGroups: number;
  #queue: Item[] = [];
  /** Steps with a report in a committing group. */
  readonly #committingSteps = new Map<string, number>();
  readonly #pending = new Map<string, number>();
  readonly #idleWaiters = new Map<string, Array<() => void>>();
  #running = 0;
  readonly #inFlight = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | null = null;
  #immediate: NodeJS.Immediate | null = null;
  #stopped = false;

  constructor(options: ResultProcessorOptions) {
    this.#o = options;
    this.#maxGroups = Math.max(1, options.maxConcurrentGroups ?? 2);
  }

  /** Items (reports, refusals, batch completions) waiting or committing. */
  get backlog(): number {
    let n = 0;
    for (const count of this.#pending.values()) n += count;
    return n;
  }

  /** Queues one ReportBatch of `session` for commit. */
  submit(session: AttachedSession, submission: ReportSubmission): void {
    const items: Item[] = [];
    for (const ack of submission.refused) items.push({ kind: 'refused', session, ack });
    for (const report of submission.reports) items.push({ kind: 'report', session, report });
    for (const completion of submission.batches) items.push({ kind: 'batch', session, completion });
    if (items.length === 0) return;
    this.#queue.push(...items);
    this.#pending.set(session.id, (this.#pending.get(session.id) ?? 0) + items.length);
    this.#schedule();
  }

  /** Resolves once nothing `sessionId` submitted is waiting or committing. */
  settled(sessionId: string): Promise<void> {
    if ((this.#pending.get(sessionId) ?? 0) === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const list = this.#idleWaiters.get(sessionId) ?? [];
      list.push(resolve);
      this.#idleWaiters.set(sessionId, list);
    });
  }

  /** Resolves once the queue is empty and no group is committing. */
  async settledAll(): Promise<void> {
    while (this.#queue.length > 0 || this.#inFlight.size > 0) {
      if (this.#inFlight.size > 0) await Promise.race(this.#inFlight);
      else await new Promise<void>((resolve) => setImmediate(resolve));
    }
  }

  /** Component start (nothing to set up: the queue is always open). */
  start(): void {
    this.#stopped = false;
  }

  /** Commits whatever is queued and waits for it; reports submitted meanwhile are committed without delay. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.settledAll();
  }

  #schedule(): void {
    if (this.#running >= this.#maxGroups) return;
    if (this.#running === 0 || this.#queue.length >= this.#o.groupCommitMax || this.#stopped) {
      // Idle (or a full group waiting): commit now, after the current tick so that the
      // reports of streams read in the same tick share the group.
      if (this.#immediate === null) {
        this.#immediate = setImmediate(() => {
          this.#immediate = null;
          this.#startGroup();
        });
      }
      return;
    }
    this.#timer ??= setTimeout(() => {
      this.#timer = null;
      this.#startGroup();
    }, this.#o.groupCommitDelayMs);
  }

  /** Cuts the next group (respecting per-step order) and commits it. */
  #startGroup(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#running >= this.#maxGroups || this.#queue.length === 0) return;
    const group: Item[] = [];
    const rest: Item[] = [];
    const deferred = new Set<string>();
    let reports = 0;
    for (const item of this.#queue) {
      const key = stepKey(item);
      const blocked = key !== null && (this.#committingSteps.has(key) || deferred.has(key));
      if (blocked || reports >= this.#o.groupCommitMax) {
        if (key !== null) deferred.add(key);
        rest.push(item);
        continue;
      }
      group.push(item);
      if (item.kind === 'report') reports += 1;
    }
    this.#queue = rest;
    if (group.length === 0) return;
    for (const item of group) {
      const key = stepKey(item);
      if (key !== null) this.#committingSteps.set(key, (this.#committingSteps.get(key) ?? 0) + 1);
    }
    this.#running += 1;
    const run = this.#commit(group).finally(() => {
      this.#running -= 1;
      this.#inFlight.delete(run);
      for (const item of group) {
        const key = stepKey(item);
        if (key === null) continue;
        const n = (this.#committingSteps.get(key) ?? 1) - 1;
        if (n <= 0) this.#committingSteps.delete(key);
        else this.#committingSteps.set(key, n);
      }
      this.#finished(group);
      if (this.#queue.length > 0) this.#schedule();
    });
    this.#inFlight.add(run);
    if (this.#queue.length > 0) this.#schedule();
  }

  /**
   * Commits one group and acks it; never rejects. The reports of every session in the
   * group are one transaction (`applyOutcomeGroup` checks each report against the
   * session that sent it), together with their BatchCompleted messages; after the
   * commit every session is acked, and the dispatcher is told which sessions' credit
   * opened and which handlers got claimable steps.
   */
  async #commit(group: readonly Item[]): Promise<void> {
    const now = this.#o.clock.now();
    const startedAt = performance.now();
    const reportItems = group.filter((i): i is Extract<Item, { kind: 'report' }> => i.kind === 'report');
    const completions = group.filter((i): i is Extract<Item, { kind: 'batch' }> => i.kind === 'batch');
    const acks = new Map<Item, ReportAck>();
    let ready: readonly ReadyWork[] = [];
    try {
      const result = await applyOutcomeGroup(
        this.#o.db,
        reportItems.map((i) => ({ ...i.report, sessionId: i.session.id })),
        now,
        {
          logger: this.#o.logger,
          notifyOrigin: this.#o.notifyOrigin ?? undefined,
          batchCompletions: completions.map((i) => ({ sessionId: i.session.id, batchId: i.completion.batchId })),
        },
      );
      reportItems.forEach((item, i) => acks.set(item, toReportAck(item.report, result.acks[i])));
      ready = result.ready;
    } catch (err) {
      const sessions = [...new Set(group.map((i) => i.session))];
      this.#o.logger.error(
        { err, sessions: sessions.map((s) => s.id) },
        'committing worker reports failed; ending the streams so they are resent',
      );
      for (const session of sessions) {
        session.channel.end(new UnavailableError('reports could not be committed; reconnect and resend', 'REPORTS_NOT_COMMITTED'));
      }
      return;
    }
    const bySession = new Map<AttachedSession, Item[]>();
    for (const item of group) {
      const list = bySession.get(item.session);
      if (list) list.push(item);
      else bySession.set(item.session, [item]);
    }
    const opened: AttachedSession[] = [];
    for (const [session, items] of bySession) if (this.#deliver(session, items, acks)) opened.push(session);
    const { changed, completed } = committedChanges(reportItems, acks);
    if (opened.length > 0 || ready.length > 0 || changed) this.#o.onCommitted?.({ opened, ready, changed, completed });
    this.#o.logger.debug(
      { items: group.length, sessions: bySession.size, ms: Math.round(performance.now() - startedAt), queued: this.#queue.length },
      'group committed',
    );
  }

  /** Sends the acks of one session's items and releases ended attempts; true when its credit opened. */
  #deliver(session: AttachedSession, items: readonly Item[], acks: Map<Item, ReportAck>): boolean {
    const out: ReportAck[] = [];
    let released = 0;
    for (const item of items) {
      if (item.kind === 'batch') continue;
      const ack = item.kind === 'refused' ? item.ack : acks.get(item);
      if (!ack) continue;
      out.push(ack);
      if (item.kind !== 'report') continue;
      const final = item.report.kind === 'completed' || item.report.kind === 'failed';
      const ended = final || (ack.reason !== null && RELEASING_REJECTIONS.has(ack.reason));
      if (ended && session.release(ack.stepId, ack.attempt)) released += 1;
    }
    if (out.length > 0 && session.channel.open) session.channel.sendAcks(out);
    return released > 0;
  }

  #finished(group: readonly Item[]): void {
    const counts = new Map<string, number>();
    for (const item of group) counts.set(item.session.id, (counts.get(item.session.id) ?? 0) + 1);
    for (const [sessionId, n] of counts) {
      const left = (this.#pending.get(sessionId) ?? n) - n;
      if (left > 0) {
        this.#pending.set(sessionId, left);
        continue;
      }
      this.#pending.delete(sessionId);
      const waiters = this.#idleWaiters.get(sessionId) ?? [];
      this.#idleWaiters.delete(sessionId);
      for (const resolve of waiters) resolve();
    }
  }
}

/** Whether any report was accepted, and the completions among them with their results. */
function committedChanges(
  reports: ReadonlyArray<Extract<Item, { kind: 'report' }>>,
  acks: ReadonlyMap<Item, ReportAck>,
): { changed: boolean; completed: CommittedResult[] } {
  let changed = false;
  const completed: CommittedResult[] = [];
  for (const item of reports) {
    if (acks.get(item)?.status !== 'accepted') continue;
    changed = true;
    const { report } = item;
    if (report.kind === 'completed') completed.push({ stepId: report.stepId, resultJson: report.resultJson ?? JSON.stringify(report.result ?? null) });
  }
  return { changed, completed };
}

function toReportAck(report: OutcomeReport, ack: OutcomeAck | undefined): ReportAck {
  if (!ack) throw new Error(`applyOutcomes returned no ack for report ${report.reportId}`);
  return {
    reportId: report.reportId,
    stepId: report.stepId,
    attempt: report.attempt,
    status: ack.status,
    reason: ack.status === 'rejected' && ack.reason ? REJECTION[ack.reason] : null,
    message: ack.message ?? '',
  };
}
