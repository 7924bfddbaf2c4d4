/**
 * @tasker/client — the Node SDK for Tasker.
 *
 * - {@link Worker} (`worker`): runs step handlers for the server over one resumable session.
 * - {@link TaskerClient} (`client`): creates, inspects, repairs and watches tasks; templates; operator views.
 * - `errors`: {@link TaskerError} and its subclasses; {@link PermanentError}, {@link RetryableError} for handlers.
 * - `handler`: {@link Step} and {@link StepContext}, what a handler receives.
 */
export { Worker } from './worker.js';
export type { StopOptions, WorkerEvents, WorkerOptions } from './worker.js';
export { TaskerClient } from './client.js';
export type { CreateTaskInput, EventFilter, TaskFilter, TaskerClientOptions } from './client.js';
export {
  AlreadyExistsError,
  CancelledError,
  ERROR_CODE_KEY,
  ERROR_DETAILS_KEY,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  PermanentError,
  PermissionDeniedError,
  ReportRejectedError,
  ResourceExhaustedError,
  RetryableError,
  TaskerError,
  UnauthenticatedError,
  UnavailableError,
  WaitTimeoutError,
  fromGrpcError,
} from './errors.js';
export type { CancelKind, GrpcStatusLike, HandlerErrorOptions, RetryableErrorOptions, TaskerErrorOptions, Violation } from './errors.js';
export { MAX_BACKTRACE_FRAMES, stepErrorFrom } from './handler.js';
export type { Step, StepContext, StepHandler } from './handler.js';
export { TERMINAL_TASK_STATES } from './models.js';
export type {
  CancelledTask,
  CreatedTask,
  ExecutionContext,
  SessionStateName,
  StepFailure,
  StepStateName,
  SystemHealth,
  Task,
  TaskPage,
  TaskStateName,
  TaskStep,
  TaskUpdate,
  TaskerEvent,
  TemplateRef,
  Transition,
  WorkerSessionInfo,
} from './models.js';
export type {
  BackoffName,
  IdentityStrategyName,
  RetryPolicyInput,
  StepOverrideInput,
  StepTemplateInput,
  TemplateDefinition,
  TemplateInput,
} from './templates.js';
export type { ConnectionOptions } from './internal/grpc.js';
export type { BackoffOptions } from './internal/backoff.js';
export type { LogFn, Logger } from './internal/logger.js';
export { silentLogger } from './internal/logger.js';
export type { ReconnectInfo, SessionInfo } from './internal/session.js';
export { SDK_LANGUAGE, SDK_VERSION } from './version.js';
