/**
 * Reading steps back as records, and the stored form of their retry policy.
 */
import { sql } from 'kysely';
import type { StepState } from '../domain/step-state.js';
import type { RetryPolicy } from '../domain/template.js';
import { Backoff, BACKOFF_KINDS } from '../domain/template.js';
import type { Executor } from './sql-helpers.js';

/** A retry policy as stored in `workflow_steps.retry` (snake_case, like the template document). */
export function retryPolicyToJson(policy: RetryPolicy): string {
  return JSON.stringify({
    max_attempts: policy.maxAttempts,
    backoff: policy.backoff,
    base_ms: policy.baseMs,
    max_ms: policy.maxMs,
    jitter: policy.jitter,
  });
}

/** The retry policy stored in `workflow_steps.retry`; `maxAttempts` comes from the column of the same name. */
export function retryPolicyFromRow(retry: Record<string, unknown>, maxAttempts: number): RetryPolicy {
  const num = (v: unknown, fallback: number): number => (typeof v === 'number' && Number.isFinite(v) ? v : fallback);
  const backoff = BACKOFF_KINDS.find((b) => b === retry.backoff) ?? Backoff.Exponential;
  return {
    maxAttempts,
    backoff,
    baseMs: num(retry.base_ms, 1000),
    maxMs: num(retry.max_ms, 60_000),
    jitter: num(retry.jitter, 0),
  };
}

/** A step as the engine returns it. */
export interface StepRecord {
  readonly id: string;
  readonly taskId: string;
  readonly name: string;
  readonly handler: string;
  readonly handlerConfig: unknown;
  readonly position: number;
  readonly state: StepState;
  /** The number of the current or last attempt: counts every attempt of the step's life, never reset. */
  readonly attempts: number;
  /** Attempts made before the current retry allowance (an operator retry sets it to `attempts`); 0 before any. */
  readonly attemptBase: number;
  /** Attempts per allowance: the step may run until `attempts - attemptBase` reaches it. */
  readonly maxAttempts: number;
  readonly retry: RetryPolicy;
  readonly timeoutMs: number | null;
  readonly priority: number;
  readonly parentCount: number;
  /** Parents not yet complete or resolved. */
  readonly pendingParents: number;
  readonly readyAt: Date | null;
  readonly sessionId: string | null;
  readonly batchId: string | null;
  readonly leaseExpiresAt: Date | null;
  readonly deadlineAt: Date | null;
  readonly result: unknown;
  readonly lastError: Record<string, unknown> | null;
  readonly startedAt: Date | null;
  readonly completedAt: Date | null;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

interface StepRow {
  id: string;
  task_id: string;
  name: string;
  handler: string;
  handler_config: unknown;
  position: number;
  state: StepState;
  attempts: number;
  attempt_base: number;
  max_attempts: number;
  retry: Record<string, unknown>;
  timeout_ms: number | null;
  priority: number;
  parent_count: number;
  pending_parents: number;
  ready_at: Date | null;
  session_id: string | null;
  batch_id: string | null;
  lease_expires_at: Date | null;
  deadline_at: Date | null;
  result: unknown;
  last_error: Record<string, unknown> | null;
  started_at: Date | null;
  completed_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

function toStepRecord(r: StepRow): StepRecord {
  return {
    id: r.id,
    taskId: r.task_id,
    name: r.name,
    handler: r.handler,
    handlerConfig: r.handler_config,
    position: r.position,
    state: r.state,
    attempts: r.attempts,
    attemptBase: r.attempt_base,
    maxAttempts: r.max_attempts,
    retry: retryPolicyFromRow(r.retry, r.max_attempts),
    timeoutMs: r.timeout_ms,
    priority: r.priority,
    parentCount: r.parent_count,
    pendingParents: r.pending_parents,
    readyAt: r.ready_at,
    sessionId: r.session_id,
    batchId: r.batch_id,
    leaseExpiresAt: r.lease_expires_at,
    deadlineAt: r.deadline_at,
    result: r.result,
    lastError: r.last_error,
    startedAt: r.started_at,
    completedAt: r.completed_at,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** The step with id `id`, or null. */
export async function findStep(db: Executor, id: string): Promise<StepRecord | null> {
  const { rows } = await sql<StepRow>`select * from workflow_steps where id = ${id}::uuid`.execute(db);
  return rows[0] ? toStepRecord(rows[0]) : null;
}

/** Every step of a task, in template order. */
export async function listTaskSteps(db: Executor, taskId: string): Promise<StepRecord[]> {
  const { rows } = await sql<StepRow>`
    select * from workflow_steps where task_id = ${taskId}::uuid order by position`.execute(db);
  return rows.map(toStepRecord);
}
