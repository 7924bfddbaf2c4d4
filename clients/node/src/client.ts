/**
 * The application client: create, inspect, repair and watch tasks; register
 * templates; read operator views.
 *
 * ```ts
 * const client = new TaskerClient({ address: 'localhost:50051', token });
 * const { task } = await client.createTask({ namespace: 'payments', name: 'refund', context: { amount: 5 } });
 * for await (const update of client.watchTask(task.taskId)) console.log(update.kind);
 * const done = await client.waitForTask(task.taskId, { timeoutMs: 60_000 });
 * ```
 *
 * Every method rejects with a {@link TaskerError} subclass when the server refuses the
 * call (`NotFoundError` with `code === 'TASK_NOT_FOUND'`, ...). JSON travels as plain
 * values.
 */
import type * as grpc from '@grpc/grpc-js';
import { AdminServiceClient } from './gen/tasker/v1/admin.js';
import { TaskServiceClient } from './gen/tasker/v1/task.js';
import type { SubscribeEventsRequest } from './gen/tasker/v1/task.js';
import { TemplateServiceClient } from './gen/tasker/v1/template.js';
import { TaskerError, UnavailableError, WaitTimeoutError } from './errors.js';
import type { Violation } from './errors.js';
import { Backoff } from './internal/backoff.js';
import type { BackoffOptions } from './internal/backoff.js';
import type { ConnectionOptions } from './internal/grpc.js';
import { authMetadata, callUnary, channelCredentials, openChannel, sleep, streamItems } from './internal/grpc.js';
import {
  TERMINAL_TASK_STATES,
  eventFromProto,
  systemHealthFromProto,
  taskFromProto,
  taskStateValue,
  taskStepFromProto,
  taskUpdateFromProto,
  transitionFromProto,
  workerSessionFromProto,
} from './models.js';
import type {
  CancelledTask,
  CreatedTask,
  SystemHealth,
  Task,
  TaskPage,
  TaskStateName,
  TaskStep,
  TaskUpdate,
  TaskerEvent,
  Transition,
  WorkerSessionInfo,
} from './models.js';
import { templateFromProto, templateToProto } from './templates.js';
import type { TemplateDefinition, TemplateInput } from './templates.js';

/** Options of {@link TaskerClient}. */
export interface TaskerClientOptions extends ConnectionOptions {
  /** Deadline of each unary call (default 30000; null = none). */
  readonly timeoutMs?: number | null;
  /** Backoff of `subscribeEvents` and `waitForTask` when the server becomes unavailable. */
  readonly reconnect?: BackoffOptions;
}

/** What `createTask` takes. */
export interface CreateTaskInput {
  readonly namespace: string;
  readonly name: string;
  /** Template version; default the most recently registered. */
  readonly version?: string;
  /** The task context (must satisfy the template's context schema). */
  readonly context?: Record<string, unknown>;
  readonly priority?: number;
  readonly tags?: readonly string[];
  readonly initiator?: string;
  readonly sourceSystem?: string;
  readonly reason?: string;
  readonly correlationId?: string;
  /** Required by templates with the `caller_provided` identity strategy. */
  readonly idempotencyKey?: string;
}

/** Filters of `listTasks`; they combine with AND. */
export interface TaskFilter {
  readonly namespace?: string;
  readonly name?: string;
  readonly states?: readonly TaskStateName[];
  readonly tag?: string;
  readonly createdAfter?: Date;
  readonly createdBefore?: Date;
  /** Tasks per page (0 = the server's default). */
  readonly pageSize?: number;
}

/** Filters of `subscribeEvents`; they combine with AND. */
export interface EventFilter {
  readonly namespace?: string;
  readonly taskName?: string;
  readonly taskId?: string;
  /** Exact catalog names, e.g. `task.completed`. */
  readonly eventTypes?: readonly string[];
  /** Start after this cursor (0 = from the oldest retained event); unset = only new events. */
  readonly afterCursor?: number;
  /** Ends the subscription. */
  readonly signal?: AbortSignal;
}

/** A response field the contract says is always set; its absence is a server bug. */
function present<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new TaskerError(`the server's response has no ${what}`, { code: 'MALFORMED_RESPONSE' });
  return value;
}

/** Client of TaskService, TemplateService and AdminService over one channel. */
export class TaskerClient {
  readonly #channel: grpc.Channel;
  readonly #metadata: grpc.Metadata;
  readonly #timeoutMs: number | null;
  readonly #reconnect: BackoffOptions;
  readonly #tasks: TaskServiceClient;
  readonly #templates: TemplateServiceClient;
  readonly #admin: AdminServiceClient;

  constructor(options: TaskerClientOptions) {
    this.#channel = openChannel(options);
    const credentials = channelCredentials(options);
    const shared = { channelOverride: this.#channel };
    this.#tasks = new TaskServiceClient(options.address, credentials, shared);
    this.#templates = new TemplateServiceClient(options.address, credentials, shared);
    this.#admin = new AdminServiceClient(options.address, credentials, shared);
    this.#metadata = authMetadata(options.token);
    this.#timeoutMs = options.timeoutMs === undefined ? 30_000 : options.timeoutMs;
    this.#reconnect = options.reconnect ?? {};
  }

  /** Closes the channel; open streams end. */
  close(): void {
    this.#channel.close();
  }

  #unary<Req, Res>(
    client: grpc.Client,
    method: (req: Req, md: grpc.Metadata, opts: Partial<grpc.CallOptions>, cb: (e: grpc.ServiceError | null, r: Res) => void) => grpc.ClientUnaryCall,
    request: Req,
  ): Promise<Res> {
    return callUnary(method.bind(client), request, this.#metadata, this.#timeoutMs);
  }

  /** Creates a task from `namespace/name` (latest version unless `version`). */
  async createTask(input: CreateTaskInput): Promise<CreatedTask> {
    const response = await this.#unary(this.#tasks, this.#tasks.createTask, {
      template: { namespace: input.namespace, name: input.name, version: input.version ?? '' },
      context: input.context ?? {},
      priority: input.priority ?? 0,
      tags: [...(input.tags ?? [])],
      initiator: input.initiator ?? '',
      sourceSystem: input.sourceSystem ?? '',
      reason: input.reason ?? '',
      correlationId: input.correlationId ?? '',
      idempotencyKey: input.idempotencyKey ?? '',
    });
    return { task: taskFromProto(present(response.task, 'task')), created: response.created };
  }

  /** One task with its steps, edges, results and execution context. */
  async getTask(taskId: string, options: { omitResults?: boolean } = {}): Promise<Task> {
    const response = await this.#unary(this.#tasks, this.#tasks.getTask, { taskId, omitResults: options.omitResults ?? false });
    return taskFromProto(present(response.task, 'task'));
  }

  /** One page of tasks, newest first. */
  async listTasks(filter: TaskFilter & { pageToken?: string } = {}): Promise<TaskPage> {
    const response = await this.#unary(this.#tasks, this.#tasks.listTasks, {
      namespace: filter.namespace ?? '',
      name: filter.name ?? '',
      states: (filter.states ?? []).map(taskStateValue),
      tag: filter.tag ?? '',
      createdAfter: filter.createdAfter,
      createdBefore: filter.createdBefore,
      pageSize: filter.pageSize ?? 0,
      pageToken: filter.pageToken ?? '',
    });
    return { tasks: response.tasks.map(taskFromProto), nextPageToken: response.nextPageToken || null };
  }

  /** Every task matching `filter`, fetching pages as the iteration needs them. */
  async *iterateTasks(filter: TaskFilter = {}): AsyncGenerator<Task, void, undefined> {
    let pageToken: string | null = '';
    while (pageToken !== null) {
      const page: TaskPage = await this.listTasks({ ...filter, pageToken });
      yield* page.tasks;
      pageToken = page.nextPageToken;
    }
  }

  /** Cancels a task; workers holding its steps are told to stop. */
  async cancelTask(taskId: string, reason = ''): Promise<CancelledTask> {
    const response = await this.#unary(this.#tasks, this.#tasks.cancelTask, { taskId, reason });
    return { task: taskFromProto(present(response.task, 'task')), cancelledStepIds: [...response.cancelledStepIds] };
  }

  /**
   * Retries every step of the task that is in `error`, each with a fresh allowance of
   * attempts (see {@link retryStep}).
   */
  async retryTask(taskId: string, reason = ''): Promise<Task> {
    return taskFromProto(present((await this.#unary(this.#tasks, this.#tasks.retryTask, { taskId, reason })).task, 'task'));
  }

  /**
   * Runs a step in `error` again, with a fresh allowance of attempts. Attempt numbers
   * are not reset: the returned step's `attemptBase` equals its `attempts`, and its
   * `attemptsInAllowance` starts again at 0.
   */
  async retryStep(stepId: string, reason = ''): Promise<TaskStep> {
    return taskStepFromProto(present((await this.#unary(this.#tasks, this.#tasks.retryStep, { stepId, reason })).step, 'step'));
  }

  /** Marks a step resolved_manually (no result) so its children may run. */
  async resolveStep(stepId: string, reason = ''): Promise<TaskStep> {
    return taskStepFromProto(present((await this.#unary(this.#tasks, this.#tasks.resolveStep, { stepId, reason })).step, 'step'));
  }

  /** Completes a step with an operator-supplied result (any JSON value). */
  async completeStep(stepId: string, result: unknown, reason = ''): Promise<TaskStep> {
    return taskStepFromProto(present((await this.#unary(this.#tasks, this.#tasks.completeStep, { stepId, result: result ?? null, reason })).step, 'step'));
  }

  /**
   * Every update of one task — its history first unless `skipHistory` — ending after
   * the update that makes the task terminal. Break out of the loop (or abort `signal`)
   * to stop early.
   */
  watchTask(taskId: string, options: { skipHistory?: boolean; signal?: AbortSignal } = {}): AsyncGenerator<TaskUpdate, void, undefined> {
    const request = { taskId, skipHistory: options.skipHistory ?? false };
    return streamItems(() => this.#tasks.watchTask(request, this.#metadata.clone()), taskUpdateFromProto, options.signal);
  }

  /**
   * Lifecycle events matching `filter`, live, until `signal` aborts or the loop is
   * left. When the server becomes unavailable (or closes the stream), the
   * subscription reconnects and resumes after the last cursor received, so nothing is
   * lost (before the first event it resumes from `afterCursor`, if given).
   */
  async *subscribeEvents(filter: EventFilter = {}): AsyncGenerator<TaskerEvent, void, undefined> {
    const backoff = new Backoff(this.#reconnect);
    let after = filter.afterCursor;
    for (;;) {
      const request: SubscribeEventsRequest = {
        namespace: filter.namespace ?? '',
        taskName: filter.taskName ?? '',
        taskId: filter.taskId ?? '',
        eventTypes: [...(filter.eventTypes ?? [])],
        afterCursor: after,
      };
      try {
        for await (const event of streamItems(() => this.#tasks.subscribeEvents(request, this.#metadata.clone()), eventFromProto, filter.signal)) {
          after = event.cursor;
          backoff.reset();
          yield event;
        }
      } catch (err) {
        if (!(err instanceof UnavailableError)) throw err;
      }
      if (filter.signal?.aborted) return;
      await sleep(backoff.next(), filter.signal);
      if (filter.signal?.aborted) return;
    }
  }

  /**
   * Resolves with the task once it is terminal (complete, error, cancelled,
   * resolved_manually), watching it meanwhile and riding out a server that is briefly
   * unavailable. Rejects with {@link WaitTimeoutError} after `timeoutMs` (default: no
   * limit), or with `signal.reason` when `signal` aborts.
   */
  async waitForTask(taskId: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<Task> {
    const controller = new AbortController();
    let timedOut = false;
    const timer =
      options.timeoutMs === undefined
        ? null
        : setTimeout(() => {
            timedOut = true;
            controller.abort();
          }, options.timeoutMs);
    const stop = (): void => controller.abort();
    if (options.signal?.aborted) stop();
    options.signal?.addEventListener('abort', stop, { once: true });
    const backoff = new Backoff(this.#reconnect);
    try {
      while (!controller.signal.aborted) {
        try {
          const task = await this.getTask(taskId);
          if (TERMINAL_TASK_STATES.has(task.state)) return task;
          let ended = false;
          for await (const update of this.watchTask(taskId, { skipHistory: true, signal: controller.signal })) {
            ended = update.kind === 'task_state_changed' && TERMINAL_TASK_STATES.has(update.toState);
            if (ended) break;
          }
          // The watch ended without the terminal update (the server closed it): look again shortly.
          if (!ended) await sleep(backoff.next(), controller.signal);
        } catch (err) {
          if (!(err instanceof UnavailableError)) throw err;
          await sleep(backoff.next(), controller.signal);
        }
      }
      if (!timedOut) throw options.signal?.reason ?? new Error('waitForTask aborted');
      throw new WaitTimeoutError(`task ${taskId} did not reach a terminal state within ${options.timeoutMs} ms`, { code: 'WAIT_TIMEOUT' });
    } finally {
      if (timer) clearTimeout(timer);
      options.signal?.removeEventListener('abort', stop);
    }
  }

  /** Stores a template version; `created` is false when the identical body was already stored. */
  async registerTemplate(template: TemplateInput): Promise<{ template: TemplateDefinition; created: boolean }> {
    const response = await this.#unary(this.#templates, this.#templates.registerTemplate, { template: templateToProto(template) });
    return { template: templateFromProto(present(response.template, 'template')), created: response.created };
  }

  /** One stored template version (the latest unless `version`). */
  async getTemplate(ref: { namespace: string; name: string; version?: string }): Promise<TemplateDefinition> {
    const response = await this.#unary(this.#templates, this.#templates.getTemplate, {
      template: { namespace: ref.namespace, name: ref.name, version: ref.version ?? '' },
    });
    return templateFromProto(present(response.template, 'template'));
  }

  /** Stored templates, optionally filtered; only the latest version of each unless `allVersions`. */
  async listTemplates(filter: { namespace?: string; name?: string; allVersions?: boolean } = {}): Promise<TemplateDefinition[]> {
    const response = await this.#unary(this.#templates, this.#templates.listTemplates, {
      namespace: filter.namespace ?? '',
      name: filter.name ?? '',
      allVersions: filter.allVersions ?? false,
    });
    return response.templates.map(templateFromProto);
  }

  /** Checks a template without storing it. */
  async validateTemplate(template: TemplateInput): Promise<{ valid: boolean; violations: Violation[] }> {
    const response = await this.#unary(this.#templates, this.#templates.validateTemplate, { template: templateToProto(template) });
    return { valid: response.valid, violations: response.violations.map((v) => ({ path: v.path, message: v.message })) };
  }

  /** Worker sessions, newest first (`admin` role). */
  async listWorkers(filter: { namespace?: string; handler?: string; includeExpired?: boolean } = {}): Promise<WorkerSessionInfo[]> {
    const response = await this.#unary(this.#admin, this.#admin.listWorkers, {
      namespace: filter.namespace ?? '',
      handler: filter.handler ?? '',
      includeExpired: filter.includeExpired ?? false,
    });
    return response.sessions.map(workerSessionFromProto);
  }

  /** Task and step counts per state, ready steps and active sessions (`admin` role). */
  async getSystemHealth(): Promise<SystemHealth> {
    return systemHealthFromProto((await this.#unary(this.#admin, this.#admin.getSystemHealth, {})).health);
  }

  /** Every recorded transition of one step, oldest first (`admin` role). */
  async getStepAudit(stepId: string): Promise<Transition[]> {
    return (await this.#unary(this.#admin, this.#admin.getStepAudit, { stepId })).transitions.map(transitionFromProto);
  }
}
