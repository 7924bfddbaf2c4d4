/**
 * Applying what workers report about their steps — started, progress, completed,
 * failed — for many reports from many streams (each naming its session) in one
 * transaction: group commit. Acks are returned only after the commit, so a worker
 * that resends an unacknowledged report gets `duplicate` for an outcome already
 * applied and the committed effect is exactly-once.
 *
 * Round trips per call, whatever the number of reports and sessions: lock the named
 * steps (one SELECT ... FOR UPDATE in id order), progress rows (only when there are
 * some), ONE statement for every state change (`applyStepChanges`: each step row is
 * written once — a StepStarted and the outcome of the same attempt in one group
 * become one UPDATE with both transitions logged — plus children's readiness, task
 * locks, transitions, batch counts, and the group's events in one ordered insert:
 * starts, then the stored progress, then outcomes — so it runs for a group of
 * progress alone too), batch completions (only when one of them may still move a
 * batch: see {@link pendingBatchCompletions}), and the task
 * write (`settleTasks`: counters and state, one write per task row, and the NOTIFY in
 * the same statement; a separate one only when no task moved).
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { StepEvent } from '../domain/events.js';
import { LEASED_STEP_STATES, StepState } from '../domain/step-state.js';
import type { SessionBatchCompletion } from '../store/batches.js';
import { completeSessionBatches } from '../store/batches.js';
import { notifyEffects, TxEffects } from '../store/events.js';
import type { DB } from '../store/schema.js';
import { applyStepChanges } from '../store/step-changes.js';
import type { ReadyWork, StepChange } from '../store/step-changes.js';
import { insertProgress, lockSteps } from '../store/steps.js';
import type { LockedStep, LockedStepBatch, NewProgress } from '../store/steps.js';
import { settleTasks } from '../store/task-changes.js';
import { withTransientRetry } from '../store/transient.js';
import { decideStepFailure, failureChange } from './failures.js';
import type { FailureOrigin, StepFailure } from './failures.js';

export type { ReadyWork } from '../store/step-changes.js';

/** What a worker reports. */
export type OutcomeKind = 'started' | 'progress' | 'completed' | 'failed';

/** One report from a worker about `(stepId, attempt)`. */
export interface OutcomeReport {
  /** Echoed in the ack so the worker can match it. */
  readonly reportId: string;
  readonly stepId: string;
  readonly attempt: number;
  readonly kind: OutcomeKind;
  /** For `completed`: the result as JSON text straight from the wire (preferred; not re-serialized). */
  readonly resultJson?: string;
  /** For `completed`, when no `resultJson`: the result value. */
  readonly result?: unknown;
  /** For `failed`. */
  readonly error?: StepFailure;
  /** For `progress`: the worker's sequence number within the attempt. */
  readonly seq?: number;
  /** For `progress`: the payload as JSON text. */
  readonly payloadJson?: string;
  /** For `progress`, when no `payloadJson`. */
  readonly payload?: unknown;
}

/** Why a report changed nothing. */
export type OutcomeRejection =
  | 'stale_attempt'
  | 'unknown_step'
  | 'not_leased_to_session'
  | 'step_not_running'
  | 'task_cancelled'
  | 'invalid_report';

/** The answer to one report, sent to the worker as `ResultAck` after commit. */
export interface OutcomeAck {
  readonly reportId: string;
  readonly status: 'accepted' | 'duplicate' | 'rejected';
  readonly reason?: OutcomeRejection;
  readonly message?: string;
}

/** A report and the session whose stream carried it (reports are checked against that session's leases). */
export interface SessionReport extends OutcomeReport {
  readonly sessionId: string;
}

/** Options of {@link applyOutcomes} and {@link applyOutcomeGroup}. */
export interface ApplyOutcomesOptions {
  /** Jitter source for retry backoff; default Math.random. */
  readonly random?: () => number;
  readonly logger?: Logger;
  /** BatchCompleted messages to record in the same transaction (after the outcomes). */
  readonly batchCompletions?: readonly SessionBatchCompletion[];
  /** Tags the transaction's `tasker_ready` notification (see `TxEffects.origin`). */
  readonly notifyOrigin?: string;
  /**
   * Who decided the failures of these reports, as stored with the error and its
   * transition: `worker` (default), or `dispatch` for a step the server failed instead
   * of sending it.
   */
  readonly failureOrigin?: ReportedFailureOrigin;
}

/** The failure origins a report can carry (lost leases and timeouts are the reaper's). */
export type ReportedFailureOrigin = Extract<FailureOrigin, 'worker' | 'dispatch'>;

/** What {@link applyOutcomeGroup} did. */
export interface OutcomeGroupResult {
  /** One ack per report, in order. */
  readonly acks: OutcomeAck[];
  /** Handlers (with their namespace) that have newly claimable steps since the commit. */
  readonly ready: readonly ReadyWork[];
}

/** The state of a step as the batch has left it so far (reports are applied in order). */
interface VirtualStep {
  state: StepState;
  origin: LockedStep;
  lastFailedAttempt: number | null;
  /** A StepStarted of the current attempt is part of this group. */
  started: boolean;
  /** The outcome (completion or failure) of the current attempt in this group. */
  outcome: StepChange | null;
}

interface Plan {
  acks: OutcomeAck[];
  /** At most one change per step: the start, the outcome, or both merged. */
  changes: StepChange[];
  progress: NewProgress[];
  /** For each entry of `progress`, the index of its report (and ack). */
  progressIndex: number[];
}

const accepted = (reportId: string): OutcomeAck => ({ reportId, status: 'accepted' });
const duplicate = (reportId: string, message: string): OutcomeAck => ({ reportId, status: 'duplicate', message });
const rejected = (reportId: string, reason: OutcomeRejection, message: string): OutcomeAck => ({
  reportId,
  status: 'rejected',
  reason,
  message,
});

function isLeased(state: StepState): boolean {
  return LEASED_STEP_STATES.includes(state);
}

/** Checks the report's shape; returns the rejection or null. */
function invalid(report: OutcomeReport): OutcomeAck | null {
  if (!Number.isInteger(report.attempt) || report.attempt < 1) {
    return rejected(report.reportId, 'invalid_report', `attempt must be a positive integer, got ${report.attempt}`);
  }
  if (report.kind === 'failed' && !report.error) return rejected(report.reportId, 'invalid_report', 'a failure report needs an error');
  if (report.kind === 'progress' && !(Number.isInteger(report.seq) && (report.seq ?? -1) >= 0)) {
    return rejected(report.reportId, 'invalid_report', 'a progress report needs a non-negative integer seq');
  }
  return null;
}

/** Where the attempt named by a report stands, or the rejection if it is not current for this session. */
function checkAttempt(report: OutcomeReport, v: VirtualStep, sessionId: string): OutcomeAck | null {
  const attempts = v.origin.attempts;
  if (report.attempt !== attempts) {
    const why = report.attempt > attempts ? 'was never dispatched' : `is over (current attempt is ${attempts})`;
    return rejected(report.reportId, 'stale_attempt', `attempt ${report.attempt} of step ${report.stepId} ${why}`);
  }
  if (v.origin.sessionId !== sessionId) {
    return rejected(report.reportId, 'not_leased_to_session', `step ${report.stepId} is leased to another session`);
  }
  return null;
}

function notRunning(report: OutcomeReport, v: VirtualStep): OutcomeAck {
  if (v.state === StepState.Cancelled) {
    return rejected(report.reportId, 'task_cancelled', `step ${report.stepId} was cancelled with its task`);
  }
  return rejected(report.reportId, 'step_not_running', `step ${report.stepId} is ${v.state}, not running attempt ${report.attempt}`);
}

function planReport(
  plan: Plan,
  report: OutcomeReport,
  v: VirtualStep,
  now: Date,
  random: () => number,
  origin: ReportedFailureOrigin,
): OutcomeAck {
  const step = v.origin;
  const base = { stepId: step.id, taskId: step.taskId, attempt: report.attempt };
  switch (report.kind) {
    case 'started':
      if (v.state === StepState.Enqueued) {
        v.started = true;
        v.state = StepState.InProgress;
        return accepted(report.reportId);
      }
      if (v.state === StepState.Cancelled) return notRunning(report, v);
      return duplicate(report.reportId, `attempt ${report.attempt} already started`);
    case 'progress': {
      if (!isLeased(v.state)) return notRunning(report, v);
      const seq = report.seq ?? 0;
      if (plan.progress.some((p) => p.stepId === step.id && p.attempt === report.attempt && p.seq === seq)) {
        return duplicate(report.reportId, `progress ${seq} of attempt ${report.attempt} repeated in one batch`);
      }
      const payloadJson = report.payloadJson ?? JSON.stringify(report.payload ?? null);
      plan.progress.push({ ...base, seq, payloadJson, namespace: step.namespace, taskName: step.taskName, stepName: step.name });
      plan.progressIndex.push(plan.acks.length);
      return accepted(report.reportId);
    }
    case 'completed': {
      if (v.state === StepState.Complete) return duplicate(report.reportId, `attempt ${report.attempt} already completed`);
      if (!isLeased(v.state)) return notRunning(report, v);
      const resultJson = report.resultJson ?? JSON.stringify(report.result ?? null);
      v.outcome = {
        ...base,
        from: v.state,
        to: StepState.Complete,
        kind: 'complete',
        event: StepEvent.Completed,
        resultJson,
        batchOutcome: 'completed',
        namespace: step.namespace,
        taskName: step.taskName,
        stepName: step.name,
      };
      v.state = StepState.Complete;
      return accepted(report.reportId);
    }
    case 'failed': {
      const error = report.error as StepFailure;
      if (v.lastFailedAttempt === report.attempt) return duplicate(report.reportId, `attempt ${report.attempt} already failed`);
      if (!isLeased(v.state)) return notRunning(report, v);
      const decision = decideStepFailure(step, error, now, random);
      v.outcome = failureChange(step, v.state, decision, error, origin, report.attempt);
      v.state = v.outcome.to;
      v.lastFailedAttempt = report.attempt;
      return accepted(report.reportId);
    }
  }
}

/** The one change of a step after its reports: its outcome (from the locked state, after a start in this group if any), or its start. */
function stepChangeOf(v: VirtualStep): StepChange | null {
  const step = v.origin;
  if (v.outcome) return { ...v.outcome, from: step.state, startedFirst: v.started };
  if (!v.started) return null;
  return {
    stepId: step.id,
    taskId: step.taskId,
    attempt: step.attempts,
    from: StepState.Enqueued,
    to: StepState.InProgress,
    kind: 'start',
    event: StepEvent.Started,
    namespace: step.namespace,
    taskName: step.taskName,
    stepName: step.name,
  };
}

/**
 * The attempt whose failure a worker last reported, from the stored `last_error`: a
 * failure report naming it again is a resend. Sound because attempt numbers are never
 * reused (an operator retry starts a new allowance, not a new numbering), so a
 * `last_error` from before a retry cannot match an attempt made after it.
 */
function lastWorkerFailure(step: LockedStep): number | null {
  const e = step.lastError;
  return e && e.origin === 'worker' && typeof e.attempt === 'number' ? e.attempt : null;
}

/** Classifies every report against the locked steps, in order, and plans the changes. */
function plan(
  reports: readonly SessionReport[],
  locked: Map<string, LockedStep>,
  now: Date,
  random: () => number,
  origin: ReportedFailureOrigin,
): Plan {
  const out: Plan = { acks: [], changes: [], progress: [], progressIndex: [] };
  const virtual = new Map<string, VirtualStep>();
  for (const report of reports) {
    const bad = invalid(report);
    const step = locked.get(report.stepId);
    let ack: OutcomeAck;
    if (bad) ack = bad;
    else if (!step) ack = rejected(report.reportId, 'unknown_step', `step ${report.stepId} does not exist`);
    else {
      let v = virtual.get(step.id);
      if (!v) {
        v = { state: step.state, origin: step, lastFailedAttempt: lastWorkerFailure(step), started: false, outcome: null };
        virtual.set(step.id, v);
      }
      ack = checkAttempt(report, v, report.sessionId) ?? planReport(out, report, v, now, random, origin);
    }
    out.acks.push(ack);
  }
  for (const v of virtual.values()) {
    const change = stepChangeOf(v);
    if (change) out.changes.push(change);
  }
  return out;
}

/**
 * The BatchCompleted messages of a group that may still move their batch. One is left
 * out when `completeSessionBatches` provably matches no row for it: a step of the group
 * belongs to its batch, and that batch — as `lockSteps` read it, plus the outcomes this
 * group's step changes counted into it (`applyStepChanges` completes a batch once
 * `completed_count + failed_count` reaches `step_count`, and times it out for a
 * `timed_out` outcome) — belongs to another session or is past `sent`/`executing`.
 * Sound although the batch row is not locked: its counts only grow, its session never
 * changes, and a batch never moves back to `sent` or `executing`. On the latency path
 * the last outcome of a batch and its BatchCompleted share a group, and this saves the
 * statement.
 */
export function pendingBatchCompletions(
  completions: readonly SessionBatchCompletion[],
  locked: ReadonlyMap<string, LockedStep>,
  changes: readonly StepChange[],
  movedIds: ReadonlySet<string>,
): SessionBatchCompletion[] {
  if (completions.length === 0) return [];
  const batches = new Map<string, LockedStepBatch>();
  for (const step of locked.values()) if (step.batch) batches.set(step.batch.id, step.batch);
  const counted = new Map<string, number>();
  const timedOut = new Set<string>();
  for (const c of changes) {
    const batchId = locked.get(c.stepId)?.batchId;
    if (!c.batchOutcome || !batchId || !movedIds.has(c.stepId)) continue;
    counted.set(batchId, (counted.get(batchId) ?? 0) + 1);
    if (c.batchOutcome === 'timed_out') timedOut.add(batchId);
  }
  return completions.filter((c) => {
    const batch = batches.get(c.batchId);
    if (!batch) return true;
    if (batch.sessionId !== c.sessionId || (batch.state !== 'sent' && batch.state !== 'executing')) return false;
    return !timedOut.has(batch.id) && batch.counted + (counted.get(batch.id) ?? 0) < batch.stepCount;
  });
}

/**
 * Applies `reports` from session `sessionId` in one transaction and returns one ack
 * per report, in order; see {@link applyOutcomeGroup}.
 */
export async function applyOutcomes(
  db: Kysely<DB>,
  sessionId: string,
  reports: readonly OutcomeReport[],
  now: Date,
  options: ApplyOutcomesOptions = {},
): Promise<OutcomeAck[]> {
  const result = await applyOutcomeGroup(db, reports.map((r) => ({ ...r, sessionId })), now, options);
  return result.acks;
}

/**
 * Applies `reports` — from any number of sessions, each checked against the leases
 * of the session that sent it — in one transaction, and returns one ack per report,
 * in order: `accepted` (committed), `duplicate` (this outcome was already applied;
 * nothing changed) or `rejected` with a reason (stale attempt, unknown step, leased to
 * another session, step not running, task cancelled, invalid report), plus the
 * handlers that got claimable steps. Reports about the same step are applied in the
 * order given. A completion releases the step's children and settles its task in the
 * same transaction; a failure goes through the step's retry policy (a worker's
 * `retryAfterMs` overrides the backoff). Results and progress payloads given as JSON
 * text are stored without re-parsing; if one is not valid JSON, the group is re-run
 * with that report rejected.
 */
export async function applyOutcomeGroup(
  db: Kysely<DB>,
  reports: readonly SessionReport[],
  now: Date,
  options: ApplyOutcomesOptions = {},
): Promise<OutcomeGroupResult> {
  if (reports.length === 0 && (options.batchCompletions?.length ?? 0) === 0) return { acks: [], ready: [] };
  try {
    return await applyOnce(db, reports, now, options);
  } catch (err) {
    if ((err as { code?: string }).code !== '22P02') throw err;
    // Some JSON text did not parse: find the culprits, reject them, and apply the rest.
    const bad = new Map<number, OutcomeAck>();
    reports.forEach((r, i) => {
      for (const text of [r.resultJson, r.payloadJson]) {
        if (text === undefined) continue;
        try {
          JSON.parse(text);
        } catch {
          bad.set(i, rejected(r.reportId, 'invalid_report', `the ${r.kind} report of step ${r.stepId} carries invalid JSON`));
        }
      }
    });
    if (bad.size === 0) throw err;
    const rest = reports.filter((_, i) => !bad.has(i));
    const result = await applyOnce(db, rest, now, options);
    let next = 0;
    return { acks: reports.map((_, i) => bad.get(i) ?? (result.acks[next++] as OutcomeAck)), ready: result.ready };
  }
}

async function applyOnce(
  db: Kysely<DB>,
  reports: readonly SessionReport[],
  now: Date,
  options: ApplyOutcomesOptions,
): Promise<OutcomeGroupResult> {
  const random = options.random ?? Math.random;
  return withTransientRetry(
    () =>
      db.transaction().execute(async (trx) => {
        const locked = await lockSteps(trx, reports.map((r) => r.stepId));
        const p = plan(reports, locked, now, random, options.failureOrigin ?? 'worker');
        const effects = new TxEffects(options.notifyOrigin);
        const stored = await insertProgress(trx, p.progress, now);
        const storedRows = new Set(stored);
        p.progress.forEach((row, i) => {
          const index = p.progressIndex[i] as number;
          if (!storedRows.has(row)) {
            p.acks[index] = duplicate(p.acks[index]!.reportId, `progress ${row.seq} of attempt ${row.attempt} already stored`);
          }
        });
        // One ordered event insert for the group: starts, then progress, then outcomes.
        const changed = await applyStepChanges(trx, p.changes, now, stored);
        effects.addEvent(changed.maxEventId);
        effects.addReady(changed.readyHandlers);
        const completions = pendingBatchCompletions(options.batchCompletions ?? [], locked, p.changes, changed.movedIds);
        await completeSessionBatches(trx, completions, now);
        // The task write is the last statement: it queues the notifications too.
        await settleTasks(trx, changed.tasks, now, 'settle', null, effects);
        await notifyEffects(trx, effects);
        return { acks: p.acks, ready: changed.ready };
      }),
    { logger: options.logger },
  );
}
