/**
 * TaskService: create, read, list, cancel and repair tasks, and stream what happens to
 * them (WatchTask, SubscribeEvents). Thin: the engine (`task-manager.ts`,
 * `queries.ts`, `event-bus.ts`, `task-watch.ts`) does the work; this file checks that
 * the caller may act in the task's namespace and converts messages (`mappers/`).
 */
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import { NotFoundError } from '../../domain/errors.js';
import { isUuid } from '../../domain/ids.js';
import { TaskState } from '../../domain/task-state.js';
import type { EventBus } from '../../engine/event-bus.js';
import type { TaskQueries } from '../../engine/queries.js';
import type { TaskManager } from '../../engine/task-manager.js';
import { watchTask } from '../../engine/task-watch.js';
import type { CancelledStepRef } from '../../engine/worker-hub.js';
import { TaskServiceService } from '../../gen/tasker/v1/task.js';
import type * as pb from '../../gen/tasker/v1/task.js';
import type { DB } from '../../store/schema.js';
import { findStep } from '../../store/step-records.js';
import { canAccessNamespace } from '../auth.js';
import type { CallContext, RpcHandlers, ServerStreamContext } from '../handlers.js';
import { eventToProto, subscriptionFromProto, taskUpdateToProto } from '../mappers/events.js';
import { createTaskRequestFromProto, listTasksOptionsFromProto, stepToProto, taskToProto } from '../mappers/task.js';
import type { GrpcServiceRegistration } from '../server.js';

/** Fully-qualified name of the service. */
export const TASK_SERVICE_NAME = 'tasker.v1.TaskService';

/** What the service needs. */
export interface TaskServiceDeps {
  readonly handlers: RpcHandlers;
  readonly tasks: TaskManager;
  readonly queries: TaskQueries;
  readonly bus: EventBus;
  readonly db: Kysely<DB>;
  /** Sends Cancel to the workers holding cancelled steps (`WorkerHub.deliverCancel`). */
  readonly deliverCancel: (steps: readonly CancelledStepRef[], reason: string) => Promise<void>;
  readonly logger: Logger;
}

const none = (text: string): string | null => (text === '' ? null : text);

/** Writes `message`, giving up as soon as `failure` rejects (a subscription ended as too slow). */
function writeOrFail<Req, Res>(ctx: ServerStreamContext<Req, Res>, message: Res, failure: Promise<never>): Promise<void> {
  return Promise.race([ctx.write(message), failure]);
}

/**
 * A stream whose subscription was closed by the call's signal ends with the signal's
 * reason (UNAVAILABLE at shutdown, so the client resumes elsewhere), not with OK.
 */
function endedBySignal(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason;
}

/** The registration of TaskService for the gRPC server. */
export function createTaskService(deps: TaskServiceDeps): GrpcServiceRegistration {
  const { handlers, tasks, queries } = deps;

  /** The task, after checking the caller may see its namespace; TASK_NOT_FOUND for unknown or malformed ids. */
  async function authorizedTask(taskId: string, ctx: CallContext) {
    if (!isUuid(taskId)) throw new NotFoundError('task', taskId);
    const task = await tasks.getTask(taskId);
    ctx.authorize(task.namespace);
    return task;
  }

  /** Checks the caller may act on the step's task; STEP_NOT_FOUND for unknown or malformed ids. */
  async function authorizeStep(stepId: string, ctx: CallContext): Promise<void> {
    const step = isUuid(stepId) ? await findStep(deps.db, stepId) : null;
    if (!step) throw new NotFoundError('step', stepId);
    await authorizedTask(step.taskId, ctx);
  }

  /** The step as GetTask shows it, after a repair. */
  async function stepAfter(taskId: string, stepId: string): Promise<pb.Step> {
    const details = await queries.getTask(taskId);
    const step = details.steps.find((s) => s.id === stepId);
    if (!step) throw new NotFoundError('step', stepId);
    return stepToProto(step);
  }

  async function taskAfter(taskId: string): Promise<pb.Task> {
    const details = await queries.getTask(taskId);
    return taskToProto(details.task, details);
  }

  return {
    name: TASK_SERVICE_NAME,
    definition: TaskServiceService,
    implementation: {
      createTask: handlers.unary<pb.CreateTaskRequest, pb.CreateTaskResponse>('client', async (req, ctx) => {
        const request = createTaskRequestFromProto(req);
        ctx.authorize(request.template.namespace);
        const { task, created } = await tasks.createTask(request);
        return { task: await taskAfter(task.id), created };
      }),

      getTask: handlers.unary<pb.GetTaskRequest, pb.GetTaskResponse>('client', async (req, ctx) => {
        if (!isUuid(req.taskId)) throw new NotFoundError('task', req.taskId);
        const details = await queries.getTask(req.taskId, { includeResults: !req.omitResults });
        ctx.authorize(details.task.namespace);
        return { task: taskToProto(details.task, details) };
      }),

      listTasks: handlers.unary<pb.ListTasksRequest, pb.ListTasksResponse>('client', async (req, ctx) => {
        const { options, matchesNothing } = listTasksOptionsFromProto(req);
        if (req.namespace) ctx.authorize(req.namespace);
        if (matchesNothing) return { tasks: [], nextPageToken: '' };
        const page = await queries.listTasks(options);
        // A token limited to some namespaces sees only their tasks; a page may then hold fewer than page_size.
        const visible = page.tasks.filter((t) => canAccessNamespace(ctx.principal, t.namespace));
        return { tasks: visible.map((t) => taskToProto(t)), nextPageToken: page.nextPageToken ?? '' };
      }),

      cancelTask: handlers.unary<pb.CancelTaskRequest, pb.CancelTaskResponse>('client', async (req, ctx) => {
        const before = await authorizedTask(req.taskId, ctx);
        const reason = none(req.reason);
        const result = await tasks.cancelTask(req.taskId, reason);
        if (result.cancelledSteps.length > 0) {
          // The cancellation is committed; a lost Cancel only means the worker's report is refused later.
          await deps.deliverCancel(result.cancelledSteps, reason ?? 'task cancelled').catch((err: unknown) => {
            ctx.logger.warn({ err, taskId: req.taskId }, 'could not deliver Cancel to every worker');
          });
        }
        const details = await queries.getTask(req.taskId);
        // Steps become cancelled only when their task is: if it was not cancelled before, this call cancelled them.
        const cancelledStepIds =
          before.state === TaskState.Cancelled ? [] : details.steps.filter((s) => s.state === 'cancelled').map((s) => s.id);
        return { task: taskToProto(details.task, details), cancelledStepIds };
      }),

      retryTask: handlers.unary<pb.RetryTaskRequest, pb.RetryTaskResponse>('client', async (req, ctx) => {
        await authorizedTask(req.taskId, ctx);
        await tasks.retryTask(req.taskId, none(req.reason));
        return { task: await taskAfter(req.taskId) };
      }),

      retryStep: handlers.unary<pb.RetryStepRequest, pb.RetryStepResponse>('client', async (req, ctx) => {
        await authorizeStep(req.stepId, ctx);
        const { task } = await tasks.retryStep(req.stepId, none(req.reason));
        return { step: await stepAfter(task.id, req.stepId) };
      }),

      resolveStep: handlers.unary<pb.ResolveStepRequest, pb.ResolveStepResponse>('client', async (req, ctx) => {
        await authorizeStep(req.stepId, ctx);
        const { task } = await tasks.resolveStep(req.stepId, none(req.reason));
        return { step: await stepAfter(task.id, req.stepId) };
      }),

      completeStep: handlers.unary<pb.CompleteStepRequest, pb.CompleteStepResponse>('client', async (req, ctx) => {
        await authorizeStep(req.stepId, ctx);
        const { task } = await tasks.completeStep(req.stepId, req.result ?? null, none(req.reason));
        return { step: await stepAfter(task.id, req.stepId) };
      }),

      watchTask: handlers.serverStream<pb.WatchTaskRequest, pb.TaskUpdate>('client', async (req, ctx) => {
        await authorizedTask(req.taskId, ctx);
        const watch = watchTask({ bus: deps.bus, db: deps.db }, req.taskId, { skipHistory: req.skipHistory, signal: ctx.signal });
        try {
          for await (const update of watch) await writeOrFail(ctx, taskUpdateToProto(update), watch.failure);
          endedBySignal(ctx.signal);
        } finally {
          watch.close();
        }
      }),

      subscribeEvents: handlers.serverStream<pb.SubscribeEventsRequest, pb.Event>('client', async (req, ctx) => {
        const { filter, afterCursor } = subscriptionFromProto(req);
        if (filter.namespace) ctx.authorize(filter.namespace);
        if (filter.taskId) await authorizedTask(filter.taskId, ctx);
        const namespaces = ctx.principal.namespaces.includes('*') ? null : [...ctx.principal.namespaces];
        const subscription = deps.bus.subscribe({ ...filter, namespaces }, { afterCursor, signal: ctx.signal });
        try {
          for await (const event of subscription) await writeOrFail(ctx, eventToProto(event), subscription.failure);
          endedBySignal(ctx.signal);
        } finally {
          subscription.close();
        }
      }),
    },
  };
}
