/**
 * Shared set-up for the engine integration tests: one migrated database per test
 * file and backend, a ManualClock, the registry, task manager and reaper, a worker
 * session, and helpers that drive steps the way a worker would.
 * Each test uses its own template name, and so its own handler, so tests sharing a
 * database never claim each other's steps.
 */
import { createHash, randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { ManualClock } from '../../src/domain/clock.js';
import { newId } from '../../src/domain/ids.js';
import { DEFAULT_RETRY_POLICY } from '../../src/domain/retry-policy.js';
import type { RetryPolicy, StepTemplate, TaskTemplate } from '../../src/domain/template.js';
import type { StepAssignment } from '../../src/engine/claims.js';
import { claimSteps } from '../../src/engine/claims.js';
import type { OutcomeAck, OutcomeReport } from '../../src/engine/outcomes.js';
import { applyOutcomes } from '../../src/engine/outcomes.js';
import { Reaper } from '../../src/engine/reaper.js';
import { TaskManager } from '../../src/engine/task-manager.js';
import { TemplateRegistry } from '../../src/engine/template-registry.js';
import type { StepRecord } from '../../src/store/step-records.js';
import { listTaskSteps } from '../../src/store/step-records.js';
import type { TaskRecord } from '../../src/store/tasks.js';
import { findTask } from '../../src/store/tasks.js';
import type { TestBackend, TestDatabase } from '../support/databases.js';

/** A retry policy without jitter, for exact backoff assertions. */
export const NO_JITTER: RetryPolicy = { ...DEFAULT_RETRY_POLICY, jitter: 0 };

/** [step name, dependencies, overrides] */
export type StepSpec = [string, string[]?, Partial<StepTemplate>?];

/** The handler every step of template `name` uses in these tests. */
export const handlerOf = (name: string): string => `${name}.work`;

/** A template whose steps all use {@link handlerOf}(name). */
export function tmpl(name: string, steps: StepSpec[], extra: Partial<TaskTemplate> = {}): TaskTemplate {
  return {
    namespace: 'test',
    name,
    version: '1.0.0',
    description: `test template ${name}`,
    contextSchema: null,
    identityStrategy: 'always_unique',
    steps: steps.map(([stepName, dependsOn = [], overrides = {}]) => ({
      name: stepName,
      handler: handlerOf(name),
      dependsOn,
      handlerConfig: { step: stepName },
      retry: NO_JITTER,
      timeoutMs: null,
      ...overrides,
    })),
    environments: {},
    ...extra,
  };
}

/** Everything a test drives the engine with. */
export interface Harness {
  readonly t: TestDatabase;
  readonly clock: ManualClock;
  readonly registry: TemplateRegistry;
  readonly manager: TaskManager;
  readonly reaper: Reaper;
  /** A live worker session serving every handler. */
  readonly sessionId: string;
  newSession(): Promise<string>;
  /** Registers `template` and creates one task of it. */
  start(template: TaskTemplate, context?: unknown): Promise<TaskRecord>;
  claim(handler: string, options?: { limit?: number; sessionId?: string; leaseMs?: number }): Promise<StepAssignment[]>;
  report(reports: OutcomeReport[], sessionId?: string): Promise<OutcomeAck[]>;
  complete(a: StepAssignment, result?: unknown): Promise<OutcomeAck>;
  fail(a: StepAssignment, error?: Partial<OutcomeReport['error']>): Promise<OutcomeAck>;
  steps(taskId: string): Promise<Map<string, StepRecord>>;
  task(taskId: string): Promise<TaskRecord>;
  close(): Promise<void>;
}

/** Opens a fresh database on `backend` and wires the engine to it. */
export async function createHarness(backend: TestBackend): Promise<Harness> {
  const t = await backend.create();
  const db = t.database.db;
  const clock = new ManualClock();
  const registry = new TemplateRegistry({ db, clock });
  const manager = new TaskManager({ db, templates: registry, clock });
  const reaper = new Reaper({ db, clock, random: () => 0.5 });
  const newSession = async (): Promise<string> => {
    const id = newId();
    const now = clock.now();
    const hash = createHash('sha256').update(randomBytes(16)).digest('hex');
    await sql`
      insert into worker_sessions (id, handle_hash, worker_name, last_heartbeat_at, expires_at, created_at, updated_at)
      values (${id}::uuid, ${hash}, 'test-worker', ${now}, ${new Date(now.getTime() + 3_600_000)}, ${now}, ${now})`.execute(db);
    return id;
  };
  const sessionId = await newSession();
  const h: Harness = {
    t,
    clock,
    registry,
    manager,
    reaper,
    sessionId,
    newSession,
    async start(template, context = {}) {
      await registry.register(template);
      return (await manager.createTask({ template, context })).task;
    },
    async claim(handler, options = {}) {
      const batch = await claimSteps(db, {
        sessionId: options.sessionId ?? sessionId,
        handlers: [handler],
        limit: options.limit ?? 100,
        leaseMs: options.leaseMs ?? 30_000,
        now: clock.now(),
      });
      return [...batch.assignments];
    },
    report: (reports, session = sessionId) => applyOutcomes(db, session, reports, clock.now(), { random: () => 0.5 }),
    async complete(a, result = { by: a.stepName }) {
      const [ack] = await h.report([
        { reportId: `c-${a.stepId}-${a.attempt}`, stepId: a.stepId, attempt: a.attempt, kind: 'completed', resultJson: JSON.stringify(result) },
      ]);
      return ack as OutcomeAck;
    },
    async fail(a, error = {}) {
      const [ack] = await h.report([
        {
          reportId: `f-${a.stepId}-${a.attempt}`,
          stepId: a.stepId,
          attempt: a.attempt,
          kind: 'failed',
          error: { errorClass: 'Boom', message: 'it broke', retryable: true, ...error },
        },
      ]);
      return ack as OutcomeAck;
    },
    async steps(taskId) {
      return new Map((await listTaskSteps(db, taskId)).map((s) => [s.name, s]));
    },
    async task(taskId) {
      const task = await findTask(db, taskId);
      if (!task) throw new Error(`task ${taskId} not found`);
      return task;
    },
    close: () => t.close(),
  };
  return h;
}

/**
 * Plays a worker until nothing of `handler` is claimable: claim, complete each
 * assignment with `work(assignment)`. Returns the assignments in claim order.
 */
export async function runToCompletion(
  h: Harness,
  handler: string,
  work: (a: StepAssignment) => unknown = (a) => ({ by: a.stepName }),
): Promise<StepAssignment[]> {
  const seen: StepAssignment[] = [];
  for (let round = 0; round < 10_000; round++) {
    const batch = await h.claim(handler);
    if (batch.length === 0) return seen;
    seen.push(...batch);
    const acks = await h.report(
      batch.map((a) => ({
        reportId: `r-${a.stepId}`,
        stepId: a.stepId,
        attempt: a.attempt,
        kind: 'completed' as const,
        resultJson: JSON.stringify(work(a)),
      })),
    );
    for (const ack of acks) if (ack.status !== 'accepted') throw new Error(`report not accepted: ${JSON.stringify(ack)}`);
  }
  throw new Error('runToCompletion did not finish');
}
