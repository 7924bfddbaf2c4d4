/**
 * The application side of the conformance suite: TemplateService, TaskService and
 * AdminService called over a real socket with the grpc-js clients generated in
 * `src/gen`, and their messages turned into plain views (lowercase state names, JSON
 * values) that scenarios are checked against and failures are printed from.
 */
import * as grpc from '@grpc/grpc-js';
import { stepStateToJSON, taskStateToJSON } from '../../../src/gen/tasker/v1/common.js';
import type { StepError, StepState, TaskState } from '../../../src/gen/tasker/v1/common.js';
import { AdminServiceClient } from '../../../src/gen/tasker/v1/admin.js';
import type { GetStepAuditResponse } from '../../../src/gen/tasker/v1/admin.js';
import { TaskServiceClient } from '../../../src/gen/tasker/v1/task.js';
import type { Step, Task, TaskUpdate } from '../../../src/gen/tasker/v1/task.js';
import { TemplateServiceClient } from '../../../src/gen/tasker/v1/template.js';
import type { TaskTemplate } from '../../../src/gen/tasker/v1/template.js';

/** A step failure as a user reads it. */
export interface FailureView {
  readonly errorClass: string;
  readonly message: string;
  readonly backtrace: readonly string[];
  readonly retryable: boolean;
  readonly retryAfterMs: number | null;
  readonly code: string;
}

/** One step of a task. */
export interface StepView {
  readonly stepId: string;
  readonly name: string;
  readonly handler: string;
  readonly state: string;
  readonly attempts: number;
  readonly result: unknown;
  readonly lastError: FailureView | null;
}

/** A task with its steps. */
export interface TaskView {
  readonly taskId: string;
  readonly state: string;
  readonly steps: readonly StepView[];
}

/** One WatchTask update. */
export type UpdateView =
  | { readonly kind: 'task_state'; readonly toState: string }
  | { readonly kind: 'step_state'; readonly stepId: string; readonly stepName: string; readonly toState: string; readonly attempt: number }
  | { readonly kind: 'progress'; readonly stepId: string; readonly stepName: string; readonly attempt: number; readonly seq: number; readonly payload: unknown }
  | { readonly kind: 'result'; readonly stepId: string; readonly stepName: string; readonly attempt: number; readonly result: unknown };

/** One audited transition of a step. */
export interface TransitionView {
  readonly fromState: string;
  readonly toState: string;
  readonly attempt: number;
  readonly reason: string;
}

/** A WatchTask stream being collected. */
export interface WatchHandle {
  /** Every update received so far, in order. */
  readonly updates: UpdateView[];
  /** Resolves when the stream ends: `null` after OK, the error otherwise. */
  readonly ended: Promise<Error | null>;
  cancel(): void;
}

/** The bearer tokens the suite calls with. */
export interface ApiTokens {
  /** `client` role: templates and tasks. */
  readonly client: string;
  /** `admin` role: GetStepAudit. */
  readonly admin: string;
}

const lower = (name: string, prefix: string): string => name.slice(prefix.length).toLowerCase();
/** `TASK_STATE_COMPLETE` → `complete`. */
export const taskStateName = (s: TaskState): string => lower(taskStateToJSON(s), 'TASK_STATE_');
/** `STEP_STATE_IN_PROGRESS` → `in_progress`. */
export const stepStateName = (s: StepState): string => lower(stepStateToJSON(s), 'STEP_STATE_');

function failureView(e: StepError | undefined): FailureView | null {
  if (!e) return null;
  return { errorClass: e.errorClass, message: e.message, backtrace: e.backtrace, retryable: e.retryable, retryAfterMs: e.retryAfterMs ?? null, code: e.code };
}

function stepView(s: Step): StepView {
  return { stepId: s.stepId, name: s.name, handler: s.handler, state: stepStateName(s.state), attempts: s.attempts, result: s.result ?? null, lastError: failureView(s.lastError) };
}

/** The plain view of a proto Task. */
export function taskView(t: Task | undefined): TaskView {
  if (!t) throw new Error('the server answered without a task');
  return { taskId: t.taskId, state: taskStateName(t.state), steps: t.steps.map(stepView) };
}

/** The plain view of a proto TaskUpdate (null for an update with no payload). */
export function updateView(u: TaskUpdate): UpdateView | null {
  const update = u.update;
  switch (update?.$case) {
    case 'taskStateChanged':
      return { kind: 'task_state', toState: taskStateName(update.value.toState) };
    case 'stepStateChanged': {
      const v = update.value;
      return { kind: 'step_state', stepId: v.stepId, stepName: v.stepName, toState: stepStateName(v.toState), attempt: v.attempt };
    }
    case 'stepProgress': {
      const v = update.value;
      return { kind: 'progress', stepId: v.stepId, stepName: v.stepName, attempt: v.attempt, seq: v.seq, payload: v.payload ?? null };
    }
    case 'stepResult': {
      const v = update.value;
      return { kind: 'result', stepId: v.stepId, stepName: v.stepName, attempt: v.attempt, result: v.result ?? null };
    }
    default:
      return null;
  }
}

type Callback<Res> = (err: grpc.ServiceError | null, res: Res) => void;

/** The three application services of one server, as promises. */
export class ConformanceApi {
  readonly #templates: TemplateServiceClient;
  readonly #tasks: TaskServiceClient;
  readonly #admin: AdminServiceClient;
  readonly #tokens: ApiTokens;

  constructor(address: string, tokens: ApiTokens) {
    const credentials = grpc.credentials.createInsecure();
    this.#templates = new TemplateServiceClient(address, credentials);
    this.#tasks = new TaskServiceClient(address, credentials);
    this.#admin = new AdminServiceClient(address, credentials);
    this.#tokens = tokens;
  }

  #metadata(token: string): grpc.Metadata {
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${token}`);
    return md;
  }

  #call<Res>(fn: (md: grpc.Metadata, cb: Callback<Res>) => unknown, token = this.#tokens.client): Promise<Res> {
    return new Promise<Res>((resolve, reject) => fn(this.#metadata(token), (err, res) => (err ? reject(err) : resolve(res))));
  }

  /** Stores a template (a repeated identical registration is a no-op). */
  async registerTemplate(template: TaskTemplate): Promise<void> {
    await this.#call((md, cb) => this.#templates.registerTemplate({ template }, md, cb));
  }

  /** Creates a task of the latest version of namespace/name. */
  async createTask(namespace: string, name: string, context: Record<string, unknown>): Promise<TaskView> {
    const req = { template: { namespace, name, version: '' }, context, priority: 0, tags: ['conformance'], initiator: 'conformance', sourceSystem: 'conformance', reason: 'conformance scenario', correlationId: '', idempotencyKey: '' };
    const res = await this.#call<{ task?: Task }>((md, cb) => this.#tasks.createTask(req, md, cb));
    return taskView(res.task);
  }

  async getTask(taskId: string): Promise<TaskView> {
    const res = await this.#call<{ task?: Task }>((md, cb) => this.#tasks.getTask({ taskId, omitResults: false }, md, cb));
    return taskView(res.task);
  }

  async cancelTask(taskId: string, reason: string): Promise<TaskView> {
    const res = await this.#call<{ task?: Task }>((md, cb) => this.#tasks.cancelTask({ taskId, reason }, md, cb));
    return taskView(res.task);
  }

  /** Every recorded transition of a step, oldest first (admin token). */
  async stepAudit(stepId: string): Promise<TransitionView[]> {
    const res = await this.#call<GetStepAuditResponse>((md, cb) => this.#admin.getStepAudit({ stepId }, md, cb), this.#tokens.admin);
    return res.transitions.map((t) => ({ fromState: t.fromState, toState: t.toState, attempt: t.attempt, reason: t.reason }));
  }

  /** Opens WatchTask (with history) and collects it; `onUpdate` sees each update as it arrives. */
  watchTask(taskId: string, onUpdate: (u: UpdateView) => void = () => {}): WatchHandle {
    const stream = this.#tasks.watchTask({ taskId, skipHistory: false }, this.#metadata(this.#tokens.client));
    const updates: UpdateView[] = [];
    const ended = new Promise<Error | null>((resolve) => {
      stream.on('data', (u: TaskUpdate) => {
        const view = updateView(u);
        if (!view) return;
        updates.push(view);
        onUpdate(view);
      });
      stream.on('error', (err: grpc.ServiceError) => resolve(err));
      stream.on('status', (s: grpc.StatusObject) => {
        if (s.code === grpc.status.OK) resolve(null);
      });
    });
    return { updates, ended, cancel: () => stream.cancel() };
  }

  close(): void {
    for (const c of [this.#templates, this.#tasks, this.#admin]) c.close();
  }
}
