/**
 * Creating tasks, and the task-level operations applications and operators call:
 * cancel and the repairs (delegated to `task-repairs.ts`). A task is created with
 * every step and edge in one statement (`insertTaskGraph`), whatever its size.
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Clock } from '../domain/clock.js';
import { assertContextValid } from '../domain/context-schema.js';
import { NotFoundError, ValidationError } from '../domain/errors.js';
import type { Violation } from '../domain/errors.js';
import { newIds } from '../domain/ids.js';
import { computeIdentity } from '../domain/identity.js';
import type { TaskTemplate } from '../domain/template.js';
import { notifyEffects, TxEffects } from '../store/events.js';
import type { DB } from '../store/schema.js';
import { retryPolicyToJson } from '../store/step-records.js';
import { findTask, findTaskByIdentity, insertTaskGraph } from '../store/tasks.js';
import type { NewEdgeRow, NewStepRow, TaskRecord } from '../store/tasks.js';
import { withTransientRetry } from '../store/transient.js';
import type { CancelTaskResult, RepairDeps, StepRepairResult } from './task-repairs.js';
import { cancelTask, completeStep, resolveStep, retryStep, retryTask } from './task-repairs.js';
import type { ReadyWork } from './outcomes.js';
import type { TemplateLookup, TemplateRegistry } from './template-registry.js';

/** A CreateTask request. */
export interface CreateTaskRequest {
  /** Which template; an empty or absent version means the latest registered. */
  readonly template: TemplateLookup;
  /** The task context, a JSON object checked against the template's context schema. Default `{}`. */
  readonly context?: unknown;
  /** Higher runs first. Default 0. */
  readonly priority?: number;
  readonly tags?: readonly string[];
  readonly initiator?: string | null;
  readonly sourceSystem?: string | null;
  readonly reason?: string | null;
  readonly correlationId?: string | null;
  /** Makes the creation idempotent under this key (required by `caller_provided` templates). */
  readonly idempotencyKey?: string | null;
}

/** What {@link TaskManager.createTask} returns: the task, and false when an identical one already existed. */
export interface CreateTaskResult {
  readonly task: TaskRecord;
  readonly created: boolean;
}

/**
 * The dispatcher of this instance, for tasks created here: their root steps go to the
 * sessions attached here as soon as the creation commits, instead of after the
 * `tasker_ready` round trip (whose echo this instance skips: `origin` tags it).
 */
export interface LocalDispatch {
  /** The instance's `tasker_ready` origin tag (`TxEffects.origin`). */
  readonly origin: string;
  /** Wakes the attached sessions serving these handlers (`Dispatcher.dispatchCommitted`). */
  dispatch(ready: readonly ReadyWork[]): void;
}

/** Dependencies of {@link TaskManager}. */
export interface TaskManagerOptions {
  readonly db: Kysely<DB>;
  readonly templates: TemplateRegistry;
  readonly clock: Clock;
  readonly logger?: Logger;
  /** Dispatch the root steps of created tasks locally; absent: through `tasker_ready` only. */
  readonly localDispatch?: LocalDispatch;
}

const INT32_MAX = 2_147_483_647;

function checkRequest(req: CreateTaskRequest): void {
  const violations: Violation[] = [];
  const priority = req.priority ?? 0;
  if (!Number.isInteger(priority) || Math.abs(priority) > INT32_MAX) {
    violations.push({ path: '/priority', message: `must be a 32-bit integer, got ${priority}` });
  }
  for (const [i, tag] of (req.tags ?? []).entries()) {
    if (typeof tag !== 'string' || tag.length === 0) violations.push({ path: `/tags/${i}`, message: 'must be a non-empty string' });
  }
  if (violations.length > 0) throw new ValidationError('invalid CreateTask request', violations);
}

/** Step and edge rows for a template, with fresh ids; roots have no parents. */
export function materializeSteps(template: TaskTemplate, now: Date): { steps: NewStepRow[]; edges: NewEdgeRow[] } {
  const ids = newIds(template.steps.length, now.getTime());
  const idOf = new Map(template.steps.map((s, i) => [s.name, ids[i] as string]));
  const steps: NewStepRow[] = [];
  const edges: NewEdgeRow[] = [];
  template.steps.forEach((s, position) => {
    const id = ids[position] as string;
    const parents = [...new Set(s.dependsOn)];
    for (const parent of parents) {
      const fromId = idOf.get(parent);
      if (!fromId) throw new ValidationError(`step ${s.name} depends on unknown step ${parent}`);
      edges.push({ fromId, toId: id });
    }
    steps.push({
      id,
      name: s.name,
      handler: s.handler,
      handlerConfigJson: JSON.stringify(s.handlerConfig ?? {}),
      position,
      maxAttempts: s.retry.maxAttempts,
      retryJson: retryPolicyToJson(s.retry),
      timeoutMs: s.timeoutMs,
      parentCount: parents.length,
    });
  });
  return { steps, edges };
}

/** Creates, cancels and repairs tasks. */
export class TaskManager {
  readonly #db: Kysely<DB>;
  readonly #templates: TemplateRegistry;
  readonly #clock: Clock;
  readonly #logger: Logger | undefined;
  readonly #repairs: RepairDeps;
  readonly #local: LocalDispatch | null;

  constructor(options: TaskManagerOptions) {
    this.#local = options.localDispatch ?? null;
    this.#db = options.db;
    this.#templates = options.templates;
    this.#clock = options.clock;
    this.#logger = options.logger;
    this.#repairs = { db: options.db, now: () => options.clock.now(), logger: options.logger };
  }

  /**
   * Creates a task from a registered template: resolves the template, checks the
   * context against its schema (ValidationError `CONTEXT_INVALID`, nothing stored),
   * computes the identity, and stores the task with every step and edge, the initial
   * transitions and `task.created` in one transaction. When the identity matches an
   * existing task (strict strategy, or an idempotency key) that task is returned with
   * `created: false` — race-safe through the unique identity index. After the commit
   * the root steps are handed to this instance's dispatcher (`localDispatch`).
   */
  async createTask(req: CreateTaskRequest): Promise<CreateTaskResult> {
    checkRequest(req);
    const resolved = await this.#templates.resolve(req.template);
    const { template } = resolved;
    const context = req.context === undefined ? {} : req.context;
    assertContextValid(resolved.validateContext, context);
    const ref = { namespace: template.namespace, name: template.name, version: template.version };
    const { identityKey } = computeIdentity({
      strategy: template.identityStrategy,
      template: ref,
      context,
      idempotencyKey: req.idempotencyKey,
    });
    if (identityKey) {
      const existing = await findTaskByIdentity(this.#db, ref.namespace, ref.name, identityKey);
      if (existing) return { task: existing, created: false };
    }
    const now = this.#clock.now();
    const { steps, edges } = materializeSteps(template, now);
    const taskId = newIds(1, now.getTime())[0] as string;
    const row = {
      id: taskId,
      templateId: resolved.id,
      ...ref,
      contextJson: JSON.stringify(context),
      priority: req.priority ?? 0,
      tags: [...(req.tags ?? [])],
      initiator: req.initiator ?? null,
      sourceSystem: req.sourceSystem ?? null,
      reason: req.reason ?? null,
      correlationId: req.correlationId ?? null,
      identityKey,
    };
    const outcome = await withTransientRetry(
      () =>
        this.#db.transaction().execute(async (trx) => {
          const inserted = await insertTaskGraph(trx, row, steps, edges, now);
          if (!inserted.created && identityKey) {
            const existing = await findTaskByIdentity(trx, ref.namespace, ref.name, identityKey);
            if (existing) return { result: { task: existing, created: false }, ready: [] };
          }
          const effects = new TxEffects(this.#local?.origin ?? null);
          effects.addReady(inserted.readyHandlers);
          effects.addEvent(inserted.maxEventId);
          await notifyEffects(trx, effects);
          const task = await findTask(trx, taskId);
          if (!task) throw new Error(`task ${taskId} was not stored`);
          this.#logger?.debug({ taskId, template: ref, steps: steps.length }, 'task created');
          return { result: { task, created: true }, ready: [...effects.readyHandlers] };
        }),
      { logger: this.#logger },
    );
    if (outcome.ready.length > 0) this.#local?.dispatch(outcome.ready.map((handler) => ({ handler, namespace: ref.namespace })));
    return outcome.result;
  }

  /** Cancels a task; see `task-repairs.ts`. */
  cancelTask(taskId: string, reason: string | null = null): Promise<CancelTaskResult> {
    return cancelTask(this.#repairs, taskId, reason);
  }

  /** Runs a failed step again with a fresh allowance of attempts (attempt numbers continue upward). */
  retryStep(stepId: string, reason: string | null = null): Promise<StepRepairResult> {
    return retryStep(this.#repairs, stepId, reason);
  }

  /** Declares a step done without a result; its children are released. */
  resolveStep(stepId: string, reason: string | null = null): Promise<StepRepairResult> {
    return resolveStep(this.#repairs, stepId, reason);
  }

  /** Completes a step with an operator-supplied result; its children are released. */
  completeStep(stepId: string, result: unknown, reason: string | null = null): Promise<StepRepairResult> {
    return completeStep(this.#repairs, stepId, JSON.stringify(result ?? null), reason);
  }

  /** Retries every failed step of a task in error or blocked by failures. */
  retryTask(taskId: string, reason: string | null = null): Promise<TaskRecord> {
    return retryTask(this.#repairs, taskId, reason);
  }

  /** The task with id `taskId` (NotFoundError `TASK_NOT_FOUND` when absent). */
  async getTask(taskId: string): Promise<TaskRecord> {
    const task = await findTask(this.#db, taskId);
    if (!task) throw new NotFoundError('task', taskId);
    return task;
  }
}
