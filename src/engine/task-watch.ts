/**
 * Watching one task: its lifecycle events turned into the updates WatchTask streams —
 * task and step state changes, progress reports and step results — in event order,
 * ending after the update that leaves the task in a terminal state.
 *
 * Where the data comes from: state changes and progress are carried in the events'
 * payloads (`{from, to, attempt, reason}`, `{attempt, seq, payload}`); a step's
 * result is not, so a completion (`step.completed`, `step.completed_manually`) is
 * followed by a result update read from `workflow_steps.result`. A complete step never
 * changes again, so the stored result is the one the completion produced, in history
 * as in live updates. The result update carries the completion event's cursor.
 *
 * History comes from `tasker_events` (the bus replays the task's events from cursor
 * 0, then continues live), so changes made on any instance are seen.
 */
import type { LifecycleEvent } from '../domain/events.js';
import { StepEvent } from '../domain/events.js';
import type { StepState } from '../domain/step-state.js';
import { isStepState, StepState as S } from '../domain/step-state.js';
import type { TaskState } from '../domain/task-state.js';
import { isTaskState, isTerminalTaskState } from '../domain/task-state.js';
import { readStepResults, taskHasEventsAfter } from '../store/event-log.js';
import type { Executor } from '../store/sql-helpers.js';
import { findTask } from '../store/tasks.js';
import type { EventBus } from './event-bus.js';
import type { EventSubscription } from './event-subscription.js';

interface UpdateBase {
  /** The id of the event the update comes from. */
  readonly cursor: number;
  readonly at: Date;
}

/** One thing that happened to a watched task. */
export type WatchUpdate =
  | (UpdateBase & {
      readonly kind: 'task_state_changed';
      /** null for the creation transition. */
      readonly from: TaskState | null;
      readonly to: TaskState;
      readonly reason: string | null;
    })
  | (UpdateBase & {
      readonly kind: 'step_state_changed';
      readonly stepId: string;
      readonly stepName: string;
      readonly from: StepState | null;
      readonly to: StepState;
      readonly attempt: number;
      readonly reason: string | null;
    })
  | (UpdateBase & {
      readonly kind: 'step_progress';
      readonly stepId: string;
      readonly stepName: string;
      readonly attempt: number;
      readonly seq: number;
      readonly payload: unknown;
    })
  | (UpdateBase & {
      readonly kind: 'step_result';
      readonly stepId: string;
      readonly stepName: string;
      /** 0 when an operator supplied the result (CompleteStep). */
      readonly attempt: number;
      readonly result: unknown;
    });

/** A running watch: iterate it for updates; `failure` rejects if the subscription fails (e.g. too slow). */
export interface TaskWatch extends AsyncIterable<WatchUpdate> {
  readonly failure: Promise<never>;
  close(): void;
}

/** What {@link watchTask} needs. */
export interface TaskWatchDeps {
  readonly bus: EventBus;
  readonly db: Executor;
}

/** Options of {@link watchTask}. */
export interface WatchTaskOptions {
  /** Only updates from now on (no history). */
  readonly skipHistory?: boolean;
  readonly signal?: AbortSignal;
}

const num = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);
const text = (value: unknown): string | null => (typeof value === 'string' ? value : null);

/** The update an event stands for, or null for events that are not task or step changes. */
export function updateFromEvent(event: LifecycleEvent): WatchUpdate | null {
  const p = event.payload;
  const base = { cursor: event.id, at: event.createdAt };
  const from = text(p['from']);
  const to = text(p['to']);
  if (event.stepId === null) {
    if (to === null || !isTaskState(to)) return null;
    return { ...base, kind: 'task_state_changed', from: from !== null && isTaskState(from) ? from : null, to, reason: text(p['reason']) };
  }
  const step = { stepId: event.stepId, stepName: event.stepName ?? '' };
  if (event.kind === StepEvent.Progress) {
    return { ...base, ...step, kind: 'step_progress', attempt: num(p['attempt']), seq: num(p['seq']), payload: p['payload'] ?? null };
  }
  if (to === null || !isStepState(to)) return null;
  return {
    ...base,
    ...step,
    kind: 'step_state_changed',
    from: from !== null && isStepState(from) ? from : null,
    to,
    attempt: num(p['attempt']),
    reason: text(p['reason']),
  };
}

/**
 * Results of complete steps of one task: those completed by this instance's recent
 * commits from the bus (no read), the others loaded in bulk once and then per step.
 */
class ResultLookup {
  readonly #bus: Pick<EventBus, 'knownResult'>;
  readonly #db: Executor;
  readonly #taskId: string;
  #known: Map<string, unknown> | null = null;

  constructor(bus: Pick<EventBus, 'knownResult'>, db: Executor, taskId: string) {
    this.#bus = bus;
    this.#db = db;
    this.#taskId = taskId;
  }

  async resultOf(stepId: string): Promise<unknown> {
    if (this.#known?.has(stepId)) return this.#known.get(stepId);
    const local = this.#bus.knownResult(stepId);
    if (local) return local.value;
    this.#known ??= await readStepResults(this.#db, this.#taskId, null);
    if (!this.#known.has(stepId)) {
      for (const [id, result] of await readStepResults(this.#db, this.#taskId, [stepId])) this.#known.set(id, result);
    }
    return this.#known.get(stepId) ?? null;
  }
}

async function* updates(deps: TaskWatchDeps, taskId: string, subscription: EventSubscription, skipHistory: boolean): AsyncGenerator<WatchUpdate> {
  try {
    if (skipHistory) {
      // Live first, then the state: a task that ends in between is seen one way or the other.
      await subscription.ready();
      const task = await findTask(deps.db, taskId);
      if (!task || isTerminalTaskState(task.state)) return;
    }
    const results = new ResultLookup(deps.bus, deps.db, taskId);
    for await (const event of subscription) {
      const update = updateFromEvent(event);
      if (!update) continue;
      yield update;
      if (update.kind === 'step_state_changed' && update.to === S.Complete) {
        const attempt = event.kind === StepEvent.CompletedManually ? 0 : update.attempt;
        const { stepId, stepName, cursor, at } = update;
        yield { kind: 'step_result', cursor, at, stepId, stepName, attempt, result: await results.resultOf(stepId) };
      }
      // A terminal state ends the watch unless the task was reopened afterwards (replaying history).
      if (update.kind === 'task_state_changed' && isTerminalTaskState(update.to)) {
        if (!(await taskHasEventsAfter(deps.db, taskId, event.id))) return;
      }
    }
  } finally {
    subscription.close();
  }
}

/**
 * Watches task `taskId` (which the caller has checked exists and may be seen): its
 * history from the first event unless `skipHistory`, then live updates, ending after
 * the update that brings the task to a terminal state. With `skipHistory` and a task
 * already terminal it ends at once.
 */
export function watchTask(deps: TaskWatchDeps, taskId: string, options: WatchTaskOptions = {}): TaskWatch {
  const skipHistory = options.skipHistory === true;
  const subscription = deps.bus.subscribe({ taskId }, { afterCursor: skipHistory ? null : 0, signal: options.signal });
  return {
    failure: subscription.failure,
    close: () => subscription.close(),
    [Symbol.asyncIterator]: () => updates(deps, taskId, subscription, skipHistory),
  };
}
