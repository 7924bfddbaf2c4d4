/**
 * Cancelling a task and an operator's repairs: retry a failed step, resolve or
 * complete a step by hand, retry every failed step of a task. Each is one
 * transaction: lock the steps (id order) and then the task, check the transition
 * tables — refusing with FailedPreconditionError naming the current state — and
 * apply the changes with the same statements the engine uses for worker outcomes,
 * so children are released and the task is settled exactly as for a completion.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { FailedPreconditionError, NotFoundError } from '../domain/errors.js';
import { StepEvent, TaskEvent } from '../domain/events.js';
import { canTransitionStep, LEASED_STEP_STATES, STEP_TRANSITIONS, StepState } from '../domain/step-state.js';
import type { StepTransitionKind } from '../domain/step-state.js';
import { canTransitionTask, TaskState } from '../domain/task-state.js';
import { notifyEffects, TxEffects } from '../store/events.js';
import type { DB } from '../store/schema.js';
import { applyStepChanges } from '../store/step-changes.js';
import type { StepChange } from '../store/step-changes.js';
import { findStep } from '../store/step-records.js';
import type { StepRecord } from '../store/step-records.js';
import { lockSteps, lockTaskSteps } from '../store/steps.js';
import type { LockedStep } from '../store/steps.js';
import { applyTaskChanges, settleTasks } from '../store/task-changes.js';
import { findTask } from '../store/tasks.js';
import type { TaskRecord } from '../store/tasks.js';
import { withTransientRetry } from '../store/transient.js';

/** What repairs need. */
export interface RepairDeps {
  readonly db: Kysely<DB>;
  readonly now: () => Date;
  readonly logger?: Logger;
}

/** An attempt that was running when its task was cancelled: the worker holding it should be told. */
export interface CancelledAttempt {
  readonly stepId: string;
  readonly attempt: number;
  readonly sessionId: string | null;
}

/** What {@link cancelTask} did. */
export interface CancelTaskResult {
  readonly task: TaskRecord;
  /** Steps that were enqueued or in progress; send their sessions a Cancel. */
  readonly cancelledSteps: readonly CancelledAttempt[];
}

/** The step an operator repaired and its task afterwards. */
export interface StepRepairResult {
  readonly task: TaskRecord;
  readonly step: StepRecord;
}

function transact<T>(deps: RepairDeps, fn: (trx: Kysely<DB>, effects: TxEffects) => Promise<T>): Promise<T> {
  return withTransientRetry(
    () =>
      deps.db.transaction().execute(async (trx) => {
        const effects = new TxEffects();
        const out = await fn(trx, effects);
        await notifyEffects(trx, effects);
        return out;
      }),
    { logger: deps.logger },
  );
}

async function mustFindTask(db: Kysely<DB>, taskId: string, forUpdate = false): Promise<TaskRecord> {
  const task = await findTask(db, taskId, { forUpdate });
  if (!task) throw new NotFoundError('task', taskId);
  return task;
}

/**
 * Cancels a task: every step still pending, enqueued, in progress or waiting for
 * retry becomes `cancelled`, then the task. Cancelling a cancelled task changes
 * nothing; a complete or resolved task is refused (`TASK_NOT_CANCELLABLE`).
 */
export function cancelTask(deps: RepairDeps, taskId: string, reason: string | null): Promise<CancelTaskResult> {
  const now = deps.now();
  return transact(deps, async (trx, effects) => {
    const steps = await lockTaskSteps(trx, taskId, STEP_TRANSITIONS.cancel.from);
    const task = await mustFindTask(trx, taskId, true);
    if (task.state === TaskState.Cancelled) return { task, cancelledSteps: [] };
    if (!canTransitionTask('cancel', task.state)) {
      throw new FailedPreconditionError(`task ${taskId} is ${task.state} and cannot be cancelled`, 'TASK_NOT_CANCELLABLE', {
        state: task.state,
      });
    }
    const changes = steps.map(
      (s): StepChange => ({
        stepId: s.id,
        taskId,
        from: s.state,
        to: StepState.Cancelled,
        kind: 'cancel',
        attempt: s.attempts,
        reason,
        event: StepEvent.Cancelled,
        batchOutcome: LEASED_STEP_STATES.includes(s.state) ? 'failed' : null,
        namespace: s.namespace,
        taskName: s.taskName,
        stepName: s.name,
      }),
    );
    const moved = await applyStepChanges(trx, changes, now);
    const delta = moved.tasks.find((u) => u.before.id === taskId)?.delta ?? null;
    const cancelled = await applyTaskChanges(
      trx,
      [{ taskId, from: task.state, to: TaskState.Cancelled, kind: 'cancel', event: TaskEvent.Cancelled, reason, delta }],
      now,
    );
    effects.addEvent(moved.maxEventId);
    effects.addEvent(cancelled.maxEventId);
    const cancelledSteps = steps
      .filter((s) => LEASED_STEP_STATES.includes(s.state) && moved.movedIds.has(s.id))
      .map((s) => ({ stepId: s.id, attempt: s.attempts, sessionId: s.sessionId }));
    return { task: await mustFindTask(trx, taskId), cancelledSteps };
  });
}

interface StepRepair {
  readonly kind: Extract<StepTransitionKind, 'manual_retry' | 'manual_resolve' | 'manual_complete'>;
  readonly code: string;
  readonly verb: string;
  readonly change: (step: LockedStep, now: Date) => Partial<StepChange> & Pick<StepChange, 'to' | 'event' | 'attempt'>;
}

async function repairStep(deps: RepairDeps, stepId: string, reason: string | null, repair: StepRepair): Promise<StepRepairResult> {
  const now = deps.now();
  return transact(deps, async (trx, effects) => {
    const step = (await lockSteps(trx, [stepId])).get(stepId);
    if (!step) throw new NotFoundError('step', stepId);
    const task = await mustFindTask(trx, step.taskId, true);
    if (!canTransitionTask('repair', task.state)) {
      throw new FailedPreconditionError(
        `cannot ${repair.verb} step ${step.name}: its task ${task.id} is ${task.state}`,
        'TASK_NOT_ACTIVE',
        { state: task.state },
      );
    }
    if (!canTransitionStep(repair.kind, step.state)) {
      const allowed = STEP_TRANSITIONS[repair.kind].from.join(', ');
      throw new FailedPreconditionError(
        `cannot ${repair.verb} step ${step.name}: it is ${step.state} (allowed from ${allowed})`,
        repair.code,
        { state: step.state },
      );
    }
    const change: StepChange = {
      stepId,
      taskId: step.taskId,
      from: step.state,
      kind: repair.kind,
      reason,
      namespace: step.namespace,
      taskName: step.taskName,
      stepName: step.name,
      ...repair.change(step, now),
    };
    const moved = await applyStepChanges(trx, [change], now);
    const settled = await settleTasks(trx, moved.tasks, now, 'repair', reason);
    effects.addEvent(moved.maxEventId);
    effects.addEvent(settled.maxEventId);
    effects.addReady(moved.readyHandlers);
    const after = await mustFindTask(trx, step.taskId);
    return { task: after, step: (await findStep(trx, stepId)) as StepRecord };
  });
}

/**
 * The change that sends a failed step back to pending with a fresh allowance of
 * `max_attempts` attempts. Attempt numbers are not reset: the allowance starts at the
 * current attempt (`newAllowance`) and the next claim makes attempt `attempts + 1`, so
 * a report naming an attempt made before the retry can never be taken for one after it.
 */
function retryChange(
  step: LockedStep,
  now: Date,
): Pick<StepChange, 'to' | 'event' | 'attempt' | 'newAllowance' | 'readyAt'> {
  return {
    to: StepState.Pending,
    event: StepEvent.RetryRequested,
    attempt: step.attempts,
    newAllowance: true,
    readyAt: step.pendingParents === 0 ? now : null,
  };
}

/**
 * Runs a step in `error` again with a fresh allowance of attempts (its attempt numbers
 * continue upward); refused otherwise (`STEP_NOT_RETRYABLE`).
 */
export function retryStep(deps: RepairDeps, stepId: string, reason: string | null): Promise<StepRepairResult> {
  return repairStep(deps, stepId, reason, {
    kind: 'manual_retry',
    code: 'STEP_NOT_RETRYABLE',
    verb: 'retry',
    change: retryChange,
  });
}

/** Declares a pending, waiting or failed step done without a result; its children are released (`STEP_NOT_RESOLVABLE`). */
export function resolveStep(deps: RepairDeps, stepId: string, reason: string | null): Promise<StepRepairResult> {
  return repairStep(deps, stepId, reason, {
    kind: 'manual_resolve',
    code: 'STEP_NOT_RESOLVABLE',
    verb: 'resolve',
    change: (step) => ({ to: StepState.ResolvedManually, event: StepEvent.ResolvedManually, attempt: step.attempts }),
  });
}

/**
 * Completes a pending, waiting or failed step with an operator-supplied result (JSON
 * text); its children are released and receive it like a worker's (`STEP_NOT_COMPLETABLE`).
 */
export function completeStep(
  deps: RepairDeps,
  stepId: string,
  resultJson: string,
  reason: string | null,
): Promise<StepRepairResult> {
  return repairStep(deps, stepId, reason, {
    kind: 'manual_complete',
    code: 'STEP_NOT_COMPLETABLE',
    verb: 'complete',
    change: (step) => ({ to: StepState.Complete, event: StepEvent.CompletedManually, attempt: step.attempts, resultJson }),
  });
}

/**
 * Retries every failed step of a task in `error` or `blocked_by_failures`, each with a
 * fresh allowance of attempts as {@link retryStep} gives; the task goes back to in
 * progress. Refused otherwise (`TASK_NOT_RETRYABLE`).
 */
export function retryTask(deps: RepairDeps, taskId: string, reason: string | null): Promise<TaskRecord> {
  const now = deps.now();
  return transact(deps, async (trx, effects) => {
    const failed = await lockTaskSteps(trx, taskId, [StepState.Error]);
    const task = await mustFindTask(trx, taskId, true);
    const retryable: readonly TaskState[] = [TaskState.Error, TaskState.BlockedByFailures];
    if (!retryable.includes(task.state) || failed.length === 0) {
      throw new FailedPreconditionError(
        `task ${taskId} is ${task.state}${failed.length === 0 ? ' with no failed step' : ''}: only a task in error or blocked_by_failures can be retried`,
        'TASK_NOT_RETRYABLE',
        { state: task.state },
      );
    }
    const changes = failed.map(
      (s): StepChange => ({
        stepId: s.id,
        taskId,
        from: s.state,
        kind: 'manual_retry',
        reason,
        ...retryChange(s, now),
        namespace: s.namespace,
        taskName: s.taskName,
        stepName: s.name,
      }),
    );
    const moved = await applyStepChanges(trx, changes, now);
    const settled = await settleTasks(trx, moved.tasks, now, 'repair', reason);
    effects.addEvent(moved.maxEventId);
    effects.addEvent(settled.maxEventId);
    effects.addReady(moved.readyHandlers);
    return mustFindTask(trx, taskId);
  });
}
