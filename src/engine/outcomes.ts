/**
 * Applying what workers report about their steps — started, progress, completed,
 * failed — for many reports (from many streams) in one transaction: group commit.
 * Acks are returned only after the commit, so a worker that resends an
 * unacknowledged report gets `duplicate` for an outcome already applied and the
 * committed effect is exactly-once.
 *
 * Round trips per call, whatever the number of reports: lock the named steps
 * (one SELECT ... FOR UPDATE in id order), then at most one statement each for
 * starts, progress rows and outcomes (`applyStepChanges`: state, children's
 * readiness, task counters, transitions, events, batch counts), one read and one
 * write to settle the touched tasks, and one NOTIFY.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { StepEvent } from '../domain/events.js';
import { LEASED_STEP_STATES, StepState } from '../domain/step-state.js';
import { notifyEffects, TxEffects } from '../store/events.js';
import type { DB } from '../store/schema.js';
import { applyStepChanges } from '../store/step-changes.js';
import type { StepChange } from '../store/step-changes.js';
import { insertProgress, lockSteps } from '../store/steps.js';
import type { LockedStep, NewProgress } from '../store/steps.js';
import { latestCounters, settleTasks } from '../store/task-changes.js';
import { withTransientRetry } from '../store/transient.js';
import { decideStepFailure, failureChange } from './failures.js';
import type { StepFailure } from './failures.js';

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

/** Options of {@link applyOutcomes}. */
export interface ApplyOutcomesOptions {
  /** Jitter source for retry backoff; default Math.random. */
  readonly random?: () => number;
  readonly logger?: Logger;
}

/** The state of a step as the batch has left it so far (reports are applied in order). */
interface VirtualStep {
  state: StepState;
  origin: LockedStep;
  lastFailedAttempt: number | null;
}

interface Plan {
  acks: OutcomeAck[];
  starts: StepChange[];
  progress: NewProgress[];
  /** For each entry of `progress`, the index of its report (and ack). */
  progressIndex: number[];
  outcomes: StepChange[];
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

function planReport(plan: Plan, report: OutcomeReport, v: VirtualStep, now: Date, random: () => number): OutcomeAck {
  const step = v.origin;
  const base = { stepId: step.id, taskId: step.taskId, attempt: report.attempt };
  switch (report.kind) {
    case 'started':
      if (v.state === StepState.Enqueued) {
        plan.starts.push({ ...base, from: v.state, to: StepState.InProgress, kind: 'start', event: StepEvent.Started });
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
      plan.outcomes.push({
        ...base,
        from: v.state,
        to: StepState.Complete,
        kind: 'complete',
        event: StepEvent.Completed,
        resultJson,
        batchOutcome: 'completed',
      });
      v.state = StepState.Complete;
      return accepted(report.reportId);
    }
    case 'failed': {
      const error = report.error as StepFailure;
      if (v.lastFailedAttempt === report.attempt) return duplicate(report.reportId, `attempt ${report.attempt} already failed`);
      if (!isLeased(v.state)) return notRunning(report, v);
      const decision = decideStepFailure(step, error, now, random);
      const change = failureChange(step, v.state, decision, error, 'worker', report.attempt);
      plan.outcomes.push(change);
      v.state = change.to;
      v.lastFailedAttempt = report.attempt;
      return accepted(report.reportId);
    }
  }
}

function lastWorkerFailure(step: LockedStep): number | null {
  const e = step.lastError;
  return e && e.origin === 'worker' && typeof e.attempt === 'number' ? e.attempt : null;
}

/** Classifies every report against the locked steps, in order, and plans the changes. */
function plan(reports: readonly OutcomeReport[], locked: Map<string, LockedStep>, sessionId: string, now: Date, random: () => number): Plan {
  const out: Plan = { acks: [], starts: [], progress: [], progressIndex: [], outcomes: [] };
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
        v = { state: step.state, origin: step, lastFailedAttempt: lastWorkerFailure(step) };
        virtual.set(step.id, v);
      }
      ack = checkAttempt(report, v, sessionId) ?? planReport(out, report, v, now, random);
    }
    out.acks.push(ack);
  }
  return out;
}

/**
 * Applies `reports` from session `sessionId` in one transaction and returns one ack
 * per report, in order: `accepted` (committed), `duplicate` (this outcome was already
 * applied; nothing changed) or `rejected` with a reason (stale attempt, unknown step,
 * leased to another session, step not running, task cancelled, invalid report).
 * Reports about the same step are applied in the order given. A completion releases
 * the step's children and settles its task in the same transaction; a failure goes
 * through the step's retry policy (a worker's `retryAfterMs` overrides the backoff).
 * Results and progress payloads given as JSON text are stored without re-parsing;
 * if one is not valid JSON, the batch is re-run with that report rejected.
 */
export async function applyOutcomes(
  db: Kysely<DB>,
  sessionId: string,
  reports: readonly OutcomeReport[],
  now: Date,
  options: ApplyOutcomesOptions = {},
): Promise<OutcomeAck[]> {
  if (reports.length === 0) return [];
  try {
    return await applyOnce(db, sessionId, reports, now, options);
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
    const acks = await applyOnce(db, sessionId, rest, now, options);
    let next = 0;
    return reports.map((_, i) => bad.get(i) ?? (acks[next++] as OutcomeAck));
  }
}

async function applyOnce(
  db: Kysely<DB>,
  sessionId: string,
  reports: readonly OutcomeReport[],
  now: Date,
  options: ApplyOutcomesOptions,
): Promise<OutcomeAck[]> {
  if (reports.length === 0) return [];
  const random = options.random ?? Math.random;
  return withTransientRetry(
    () =>
      db.transaction().execute(async (trx) => {
        const locked = await lockSteps(trx, reports.map((r) => r.stepId));
        const p = plan(reports, locked, sessionId, now, random);
        const effects = new TxEffects();
        const started = await applyStepChanges(trx, p.starts, now);
        effects.addEvent(started.maxEventId);
        const progress = await insertProgress(trx, p.progress, now);
        effects.addEvent(progress.maxEventId);
        p.progress.forEach((row, i) => {
          const index = p.progressIndex[i] as number;
          if (!progress.inserted.has(`${row.stepId}:${row.attempt}:${row.seq}`)) {
            p.acks[index] = duplicate(p.acks[index]!.reportId, `progress ${row.seq} of attempt ${row.attempt} already stored`);
          }
        });
        const finished = await applyStepChanges(trx, p.outcomes, now);
        effects.addEvent(finished.maxEventId);
        effects.addReady(finished.readyHandlers);
        const settled = await settleTasks(trx, latestCounters(started.tasks, finished.tasks), now, 'settle');
        effects.addEvent(settled.maxEventId);
        await notifyEffects(trx, effects);
        return p.acks;
      }),
    { logger: options.logger },
  );
}
