/**
 * AdminService messages from the operator reads: worker sessions, system health,
 * analytics and a step's audit trail.
 */
import { SessionState } from '../../gen/tasker/v1/admin.js';
import type { GetAnalyticsResponse, SystemHealth, Transition, WorkerSession } from '../../gen/tasker/v1/admin.js';
import type { Analytics, SystemHealth as DomainSystemHealth, WorkerSessionInfo } from '../../store/admin-reads.js';
import type { StepTransitionRecord } from '../../store/transitions.js';

/**
 * A session's lifecycle state at `now`: `closed` (drained and ended) and sessions past
 * `expires_at` can no longer be resumed, which the wire calls EXPIRED.
 */
export function sessionStateToProto(s: WorkerSessionInfo, now: Date): SessionState {
  if (s.state === 'expired' || s.state === 'closed' || s.expiresAt.getTime() <= now.getTime()) return SessionState.SESSION_STATE_EXPIRED;
  return s.state === 'draining' ? SessionState.SESSION_STATE_DRAINING : SessionState.SESSION_STATE_ACTIVE;
}

/** One worker session. */
export function workerSessionToProto(s: WorkerSessionInfo, now: Date): WorkerSession {
  const state = sessionStateToProto(s, now);
  return {
    sessionId: s.id,
    workerName: s.workerName,
    language: s.language,
    sdkVersion: s.sdkVersion,
    handlers: [...s.handlers],
    namespaces: [...s.namespaces],
    labels: { ...s.labels },
    maxInFlight: s.maxInFlight,
    inFlight: s.inFlight,
    state,
    serverInstance: s.instanceId ?? '',
    connected: s.connected && state !== SessionState.SESSION_STATE_EXPIRED,
    lastHeartbeatAt: s.lastHeartbeatAt,
    expiresAt: s.expiresAt,
    createdAt: s.createdAt,
  };
}

/** System-wide counts: every state present; active sessions are the connected, unexpired ones. */
export function systemHealthToProto(h: DomainSystemHealth): SystemHealth {
  return {
    taskCounts: { ...h.tasks },
    stepCounts: { ...h.steps },
    readySteps: h.readySteps,
    activeSessions: h.sessions.connected,
    at: h.at,
  };
}

/** Analytics of one window; `visible` keeps only the tasks (and their steps) the caller may see. */
export function analyticsToProto(a: Analytics, visible: (namespace: string) => boolean): GetAnalyticsResponse {
  return {
    tasksPerMinute: a.tasksPerMinute,
    stepsPerMinute: a.stepsPerMinute,
    slowestSteps: a.slowestSteps
      .filter((s) => visible(s.namespace))
      .map((s) => ({ taskId: s.taskId, stepId: s.stepId, stepName: s.name, handler: s.handler, durationMs: s.durationMs })),
    slowestTasks: a.slowestTasks
      .filter((t) => visible(t.namespace))
      .map((t) => ({ taskId: t.taskId, namespace: t.namespace, name: t.name, durationMs: t.durationMs })),
  };
}

/** One audit row of a step. */
export function transitionToProto(t: StepTransitionRecord): Transition {
  return {
    fromState: t.from ?? '',
    toState: t.to,
    attempt: t.attempt,
    reason: t.reason ?? '',
    metadata: { ...t.metadata },
    at: t.at,
  };
}
