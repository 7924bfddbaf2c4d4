/**
 * WorkerService.Connect: the protocol state machine of one worker stream, kept thin —
 * sessions, dispatch and commits live in the engine (`session-manager`, `dispatcher`,
 * `result-processor`, `worker-hub`).
 *
 * States: awaiting Hello → open (reports, heartbeats, credit, drain) → ending. The
 * stream is paused while Hello is processed, so nothing is read before Welcome is
 * sent. Ending:
 * - the worker half-closes: its queued reports are committed and acked, then the
 *   session is closed (after a worker Drain) or detached (resumable until it expires);
 * - the call is cancelled or the connection drops: the session is detached; its
 *   queued reports still commit (the SDK resends them on resume, acked DUPLICATE);
 * - this instance shuts down: Drain is sent, the stream waits (within the grace
 *   period) for the worker to report what it holds and for those acks, then ends OK;
 * - the session is taken over, expired, or its stream fell silent: the stream ends
 *   with FAILED_PRECONDITION and the reason.
 */
import type * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { FailedPreconditionError, PermissionDeniedError, UnavailableError, ValidationError } from '../../domain/errors.js';
import type { TaskTemplate } from '../../domain/template.js';
import type { Dispatcher } from '../../engine/dispatcher.js';
import type { ResultProcessor } from '../../engine/result-processor.js';
import type { OpenedSession, SessionManager } from '../../engine/session-manager.js';
import type { AttachedSession } from '../../engine/attached-session.js';
import type { WorkerHub } from '../../engine/worker-hub.js';
import type { TaskTemplate as ProtoTaskTemplate } from '../../gen/tasker/v1/template.js';
import { WorkerServiceService } from '../../gen/tasker/v1/worker.js';
import type { Hello, ServerMessage, WorkerMessage } from '../../gen/tasker/v1/worker.js';
import { canAccessNamespace } from '../auth.js';
import type { BidiStreamContext, RpcHandlers } from '../handlers.js';
import type { GrpcServiceRegistration } from '../server.js';
import { StreamChannel } from './worker-stream-channel.js';
import { profileFromHello, submissionFromReports, welcomeMessage } from '../mappers/worker.js';

/** Fully-qualified name of the service. */
export const WORKER_SERVICE_NAME = 'tasker.v1.WorkerService';

/** What the service needs. */
export interface WorkerServiceDeps {
  readonly handlers: RpcHandlers;
  readonly sessions: SessionManager;
  readonly hub: WorkerHub;
  readonly dispatcher: Dispatcher;
  readonly results: ResultProcessor;
  /** Converts Hello.templates to domain templates (throws ValidationError as RegisterTemplate would); null = not accepted. */
  readonly templateFromProto: ((template: ProtoTaskTemplate) => TaskTemplate) | null;
  /** `server.shutdown_grace_ms`: how long a draining stream may wait for its worker. */
  readonly shutdownGraceMs: number;
  readonly logger: Logger;
}

type Call = grpc.ServerDuplexStream<WorkerMessage, ServerMessage>;
type Ctx = BidiStreamContext<WorkerMessage, ServerMessage>;

/** The registration of WorkerService for the gRPC server. */
export function createWorkerService(deps: WorkerServiceDeps): GrpcServiceRegistration {
  return {
    name: WORKER_SERVICE_NAME,
    definition: WorkerServiceService,
    implementation: {
      connect: deps.handlers.bidiStream<WorkerMessage, ServerMessage>('worker', (call, ctx) => new WorkerStream(deps, call, ctx).run()),
    },
  };
}

/** The namespaces a session may serve: Hello's (each must be within the token's), or the token's own. */
function sessionNamespaces(hello: Hello, ctx: Ctx): string[] {
  const requested = hello.namespaces.filter((n) => n.length > 0);
  for (const ns of requested) {
    if (!canAccessNamespace(ctx.principal, ns)) {
      throw new PermissionDeniedError(`token "${ctx.principal.name}" may not serve namespace "${ns}"`, { namespace: ns });
    }
  }
  if (requested.length > 0) return requested;
  return ctx.principal.namespaces.includes('*') ? [] : [...ctx.principal.namespaces];
}

/** One Connect stream. */
class WorkerStream {
  readonly #d: WorkerServiceDeps;
  readonly #call: Call;
  readonly #ctx: Ctx;
  readonly #channel: StreamChannel;
  #attached: AttachedSession | null = null;
  #logger: Logger;
  #heartbeat: Promise<void> | null = null;
  #heartbeatAgain = false;
  #serverDrain = false;

  constructor(deps: WorkerServiceDeps, call: Call, ctx: Ctx) {
    this.#d = deps;
    this.#call = call;
    this.#ctx = ctx;
    this.#logger = ctx.logger;
    this.#channel = new StreamChannel(call);
  }

  async run(): Promise<void> {
    const { call, ctx } = { call: this.#call, ctx: this.#ctx };
    const onAbort = () => {
      if (call.cancelled) this.#channel.markClosed('cancelled');
      else if (!this.#attached) this.#channel.end(new UnavailableError('server is shutting down', 'SERVER_SHUTTING_DOWN'));
      else this.#serverDrain = true;
      this.#channel.wake();
    };
    if (ctx.signal.aborted) onAbort();
    else ctx.signal.addEventListener('abort', onAbort, { once: true });
    try {
      const hello = await this.#channel.first();
      if (hello && hello.kind?.$case !== 'hello') {
        throw new ValidationError('the first message on a worker stream must be Hello', [], 'HELLO_REQUIRED');
      }
      if (hello?.kind?.$case === 'hello') await this.#open(hello.kind.value);
      if (this.#attached) await this.#serve(this.#attached);
      const error = this.#channel.error;
      if (error) throw error;
    } finally {
      ctx.signal.removeEventListener('abort', onAbort);
    }
  }

  async #open(hello: Hello): Promise<void> {
    const convert = this.#d.templateFromProto;
    if (hello.templates.length > 0 && !convert) {
      throw new FailedPreconditionError(
        'this server does not register templates sent in Hello; register them with TemplateService.RegisterTemplate',
        'HELLO_TEMPLATES_UNSUPPORTED',
      );
    }
    const templates = convert ? hello.templates.map((t) => convert(t)) : [];
    for (const t of templates) this.#ctx.authorize(t.namespace);
    const opened = await this.#d.sessions.open({
      ...profileFromHello(hello),
      namespaces: sessionNamespaces(hello, this.#ctx),
      resumeHandle: hello.resumeHandle,
      templates,
    });
    if (!this.#channel.open) {
      await this.#d.sessions.detach(opened.session.id);
      return;
    }
    this.#attach(opened);
  }

  #attach(opened: OpenedSession): void {
    const replacedError = new FailedPreconditionError(
      'the session was resumed on another stream',
      'SESSION_RESUMED_ELSEWHERE',
      { sessionId: opened.session.id },
    );
    const { attached } = this.#d.hub.attach(opened.session, this.#channel, opened.inFlight, replacedError);
    this.#attached = attached;
    this.#logger = this.#logger.child({ sessionId: attached.id });
    this.#channel.write(welcomeMessage(opened));
    this.#logger.info(
      { worker: opened.session.workerName, resumed: opened.resumed, inFlight: opened.inFlight.length, handlers: attached.handlerList.length },
      opened.resumed ? 'worker session resumed' : 'worker session opened',
    );
    this.#d.dispatcher.wakeSession(attached);
  }

  /** Reads messages until the stream ends, then winds the session down. */
  async #serve(attached: AttachedSession): Promise<void> {
    this.#channel.resume();
    for (;;) {
      if (this.#serverDrain) return this.#drainForShutdown(attached);
      const message = await this.#channel.next();
      if (message === 'wake') continue;
      if (message === null) break;
      this.#d.hub.touch(attached);
      this.#handle(attached, message);
    }
    await this.#finish(attached);
  }

  #handle(attached: AttachedSession, message: WorkerMessage): void {
    const kind = message.kind;
    switch (kind?.$case) {
      case 'reports':
        this.#d.results.submit(attached, submissionFromReports(kind.value, this.#d.sessions.settings.maxReportBytes));
        return;
      case 'heartbeat':
        this.#beat(attached);
        return;
      case 'credit':
        this.#credit(attached, kind.value.slots);
        return;
      case 'drain':
        this.#workerDrain(attached);
        return;
      case 'hello':
        this.#channel.end(new ValidationError('Hello may only be the first message of a stream', [], 'HELLO_REPEATED'));
        return;
      default:
        this.#logger.debug('ignoring a worker message without a kind');
    }
  }

  /** Heartbeats coalesce: at most one database write per stream at a time. */
  #beat(attached: AttachedSession): void {
    if (this.#heartbeat) {
      this.#heartbeatAgain = true;
      return;
    }
    const generation = attached.generation;
    this.#heartbeat = this.#d.sessions
      .heartbeat(attached.id)
      .then(async (result) => {
        if (!result.owned) return this.#lost(attached);
        if (attached.reconcile(result.leased, generation) > 0) this.#d.hub.creditOpened(attached);
      })
      .catch((err: unknown) => this.#logger.warn({ err }, 'heartbeat could not be recorded'))
      .finally(() => {
        this.#heartbeat = null;
        if (this.#heartbeatAgain && this.#channel.open) {
          this.#heartbeatAgain = false;
          this.#beat(attached);
        }
      });
  }

  async #lost(attached: AttachedSession): Promise<void> {
    const loss = await this.#d.sessions.lossOf(attached.id);
    this.#d.hub.detach(attached);
    this.#channel.end(
      loss === 'resumed_elsewhere'
        ? new FailedPreconditionError('the session was resumed on another stream', 'SESSION_RESUMED_ELSEWHERE', { sessionId: attached.id })
        : new FailedPreconditionError('the session expired; connect again without a handle', 'SESSION_EXPIRED', { sessionId: attached.id }),
    );
  }

  #credit(attached: AttachedSession, slots: number): void {
    const before = attached.openCredit;
    attached.credit = this.#d.sessions.capCredit(slots);
    if (attached.openCredit > before) this.#d.hub.creditOpened(attached);
    this.#d.dispatcher.wakeSession(attached);
    void this.#d.sessions.setCredit(attached.id, slots).catch((err: unknown) => this.#logger.warn({ err }, 'credit could not be stored'));
  }

  #workerDrain(attached: AttachedSession): void {
    attached.workerDraining = true;
    this.#logger.info({ held: attached.heldCount }, 'worker draining');
    void this.#d.sessions.drain(attached.id).catch((err: unknown) => this.#logger.warn({ err }, 'drain could not be stored'));
  }

  /** The stream ended (half-close, cancel, or ended by us): commit what is queued, then detach or close. */
  async #finish(attached: AttachedSession): Promise<void> {
    const current = this.#d.hub.detach(attached);
    await this.#d.results.settled(attached.id);
    await this.#heartbeat;
    if (!current) return;
    const write = attached.workerDraining && this.#channel.closedBy === 'client' ? 'close' : 'detach';
    await this.#d.sessions[write](attached.id).catch((err: unknown) => this.#logger.warn({ err }, `session ${write} failed`));
    this.#logger.info({ held: attached.heldCount, closed: write === 'close', by: this.#channel.closedBy }, 'worker stream ended');
  }

  /** Server shutdown: Drain, wait (within the grace period) for held steps to be reported and acked, end OK. */
  async #drainForShutdown(attached: AttachedSession): Promise<void> {
    attached.serverDraining = true;
    const graceMs = Math.max(0, Math.floor(this.#d.shutdownGraceMs * 0.8));
    const deadline = Date.now() + graceMs;
    this.#channel.sendDrain('server shutting down', graceMs);
    while (this.#channel.open && attached.heldCount > 0 && Date.now() < deadline) {
      const message = await this.#channel.next(Math.max(1, deadline - Date.now()));
      if (message === null) break;
      if (message === 'wake') continue;
      this.#d.hub.touch(attached);
      if (message.kind?.$case !== 'hello') this.#handle(attached, message);
    }
    await this.#d.results.settled(attached.id);
    this.#channel.end();
    await this.#finish(attached);
  }
}
