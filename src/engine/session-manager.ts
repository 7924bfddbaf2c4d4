/**
 * Worker sessions: opening (new or resumed), heartbeats, credit, drain, detach and
 * close, on behalf of the streams attached to this instance.
 *
 * The session handle is 32 random bytes, base64url (256 bits, above the protocol's
 * 128-bit floor). Only its sha256 (hex) is stored; the plaintext exists in the
 * Welcome sent to the worker and nowhere else, and is never logged.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { Clock } from '../domain/clock.js';
import { FailedPreconditionError, ValidationError } from '../domain/errors.js';
import type { Violation } from '../domain/errors.js';
import { newId } from '../domain/ids.js';
import type { TaskTemplate } from '../domain/template.js';
import type { DB } from '../store/schema.js';
import type { HeartbeatResult, LeasedStepRef, SessionProfile, SessionRecord } from '../store/sessions.js';
import {
  attachSession,
  closeSession,
  detachSession,
  findSession,
  heartbeatSession,
  insertSession,
  markSessionDraining,
  updateSessionCredit,
} from '../store/sessions.js';
import { withTransientRetry } from '../store/transient.js';
import type { TemplateRegistry } from './template-registry.js';

/** The session timing and limits (the `workers.*` configuration). */
export interface SessionSettings {
  readonly heartbeatIntervalMs: number;
  readonly leaseMs: number;
  readonly sessionTtlMs: number;
  /** Upper bound of any session's credit. */
  readonly maxInFlight: number;
  readonly maxReportBytes: number;
}

/** Options of {@link SessionManager}. */
export interface SessionManagerOptions {
  readonly db: Kysely<DB>;
  readonly clock: Clock;
  readonly instanceId: string;
  readonly settings: SessionSettings;
  readonly templates: Pick<TemplateRegistry, 'register'>;
  readonly logger: Logger;
}

/** A Hello in domain terms. */
export interface OpenSessionRequest extends SessionProfile {
  /** Empty = new session. */
  readonly resumeHandle: string;
  /** Templates to register before the session opens. */
  readonly templates: readonly TaskTemplate[];
}

/** What the Welcome tells the worker. */
export interface OpenedSession {
  readonly session: SessionRecord;
  /** The bearer handle (new, or the one the worker resumed with). Never log it. */
  readonly handle: string;
  readonly resumed: boolean;
  /** On resume, the attempts still leased to the session. */
  readonly inFlight: readonly LeasedStepRef[];
  /** On resume, the instance that carried the session before (null when it was disconnected). */
  readonly previousInstanceId: string | null;
  readonly heartbeatIntervalMs: number;
  readonly leaseMs: number;
  readonly expiresAt: Date;
  readonly serverInstance: string;
  readonly maxReportBytes: number;
}

/** Why a heartbeat or write found the session no longer carried by this stream. */
export type SessionLoss = 'expired' | 'resumed_elsewhere';

const MAX_TEXT = 200;
const MAX_HANDLERS = 1000;
const MAX_LABELS = 64;

/** sha256 (hex) of a session handle: what `worker_sessions.handle_hash` stores. */
export function hashSessionHandle(handle: string): string {
  return createHash('sha256').update(handle, 'utf8').digest('hex');
}

/** A new session handle: 32 random bytes, base64url. */
export function newSessionHandle(): string {
  return randomBytes(32).toString('base64url');
}

/** Text without NUL characters, which PostgreSQL text and jsonb refuse. */
function clean(text: string): string {
  return text.includes('\0') ? text.replace(/\0/g, '') : text;
}

/** Checks and normalizes a Hello's profile; throws ValidationError naming each problem. */
export function normalizeProfile(p: SessionProfile, maxInFlight: number): SessionProfile {
  const violations: Violation[] = [];
  const workerName = clean(p.workerName).trim() || `${clean(p.language).trim() || 'unnamed'}-worker`;
  if (workerName.length > MAX_TEXT) violations.push({ path: '/hello/worker_name', message: `must be at most ${MAX_TEXT} characters` });
  const handlers = [...new Set(p.handlers.map(clean).filter((h) => h.length > 0))];
  if (handlers.length > MAX_HANDLERS) violations.push({ path: '/hello/handlers', message: `at most ${MAX_HANDLERS} handlers` });
  const labels = Object.entries(p.labels);
  if (labels.length > MAX_LABELS) violations.push({ path: '/hello/labels', message: `at most ${MAX_LABELS} labels` });
  if (violations.length > 0) throw new ValidationError('invalid Hello', violations);
  return {
    workerName,
    language: clean(p.language).slice(0, MAX_TEXT),
    sdkVersion: clean(p.sdkVersion).slice(0, MAX_TEXT),
    handlers,
    namespaces: [...new Set(p.namespaces.map(clean).filter((n) => n.length > 0))],
    labels: Object.fromEntries(labels.map(([k, v]) => [clean(k).slice(0, MAX_TEXT), clean(v).slice(0, 1000)])),
    maxInFlight: Math.max(0, Math.min(Math.floor(p.maxInFlight), maxInFlight)),
  };
}

/** Opens and maintains sessions; see the file comment. */
export class SessionManager {
  readonly #o: SessionManagerOptions;

  constructor(options: SessionManagerOptions) {
    this.#o = options;
  }

  /** The `workers.*` settings sessions run with. */
  get settings(): SessionSettings {
    return this.#o.settings;
  }

  /** This instance's id (stored as the owner of the sessions it carries). */
  get instanceId(): string {
    return this.#o.instanceId;
  }

  /** Caps a requested credit to `workers.max_in_flight`. */
  capCredit(slots: number): number {
    return Math.max(0, Math.min(Math.floor(slots), this.#o.settings.maxInFlight));
  }

  /**
   * Registers the Hello's templates, then creates a session, or resumes the one
   * `resumeHandle` names: FailedPreconditionError `SESSION_EXPIRED` when no live
   * session has that handle.
   */
  async open(request: OpenSessionRequest): Promise<OpenedSession> {
    const profile = normalizeProfile(request, this.#o.settings.maxInFlight);
    for (const template of request.templates) await this.#o.templates.register(template);
    const s = this.#o.settings;
    const now = this.#o.clock.now();
    const expiresAt = new Date(now.getTime() + s.sessionTtlMs);
    const common = {
      heartbeatIntervalMs: s.heartbeatIntervalMs,
      leaseMs: s.leaseMs,
      expiresAt,
      serverInstance: this.#o.instanceId,
      maxReportBytes: s.maxReportBytes,
    };
    if (request.resumeHandle.length > 0) {
      const attached = await withTransientRetry(
        () =>
          attachSession(this.#o.db, {
            handleHash: hashSessionHandle(request.resumeHandle),
            instanceId: this.#o.instanceId,
            profile,
            now,
            expiresAt,
            leaseExpiresAt: new Date(now.getTime() + s.leaseMs),
          }),
        { logger: this.#o.logger },
      );
      if (!attached) {
        throw new FailedPreconditionError(
          'the session handle names no live session (expired, closed or unknown); connect again without a handle',
          'SESSION_EXPIRED',
        );
      }
      return {
        ...common,
        session: attached.session,
        handle: request.resumeHandle,
        resumed: true,
        inFlight: attached.leased,
        previousInstanceId: attached.previousInstanceId,
      };
    }
    const handle = newSessionHandle();
    const session = await insertSession(this.#o.db, {
      ...profile,
      id: newId(now.getTime()),
      handleHash: hashSessionHandle(handle),
      instanceId: this.#o.instanceId,
      now,
      expiresAt,
    });
    return { ...common, session, handle, resumed: false, inFlight: [], previousInstanceId: null };
  }

  /**
   * Records a heartbeat: pushes the session's expiry and every unexpired lease it
   * holds. `owned: false` means this stream no longer carries the session; see
   * {@link lossOf} for why.
   */
  heartbeat(sessionId: string): Promise<HeartbeatResult> {
    const s = this.#o.settings;
    const now = this.#o.clock.now();
    return withTransientRetry(
      () =>
        heartbeatSession(this.#o.db, {
          sessionId,
          instanceId: this.#o.instanceId,
          now,
          expiresAt: new Date(now.getTime() + s.sessionTtlMs),
          leaseExpiresAt: new Date(now.getTime() + s.leaseMs),
        }),
      { logger: this.#o.logger },
    );
  }

  /** Why this instance no longer carries `sessionId`. */
  async lossOf(sessionId: string): Promise<SessionLoss> {
    const session = await findSession(this.#o.db, sessionId);
    const live = session && (session.state === 'active' || session.state === 'draining') && session.expiresAt > this.#o.clock.now();
    return live && session.instanceId !== null && session.instanceId !== this.#o.instanceId ? 'resumed_elsewhere' : 'expired';
  }

  /** Stores a new credit; false when this instance no longer carries the session. */
  setCredit(sessionId: string, slots: number): Promise<boolean> {
    return this.#owned((w) => updateSessionCredit(this.#o.db, { ...w, maxInFlight: this.capCredit(slots) }), sessionId);
  }

  /** The worker drains: `active` → `draining`. */
  drain(sessionId: string): Promise<boolean> {
    return this.#owned((w) => markSessionDraining(this.#o.db, w), sessionId);
  }

  /** The stream ended without the session ending: it stays resumable until it expires. */
  detach(sessionId: string): Promise<boolean> {
    return this.#owned((w) => detachSession(this.#o.db, w), sessionId);
  }

  /** The worker drained and closed: the session ends; leases it still holds are released. */
  close(sessionId: string): Promise<boolean> {
    return this.#owned((w) => closeSession(this.#o.db, w), sessionId);
  }

  #owned(fn: (w: { sessionId: string; instanceId: string; now: Date }) => Promise<boolean>, sessionId: string): Promise<boolean> {
    const write = { sessionId, instanceId: this.#o.instanceId, now: this.#o.clock.now() };
    return withTransientRetry(() => fn(write), { logger: this.#o.logger });
  }
}
