/**
 * Parity of the SQL functions `step_readiness()` and `task_execution_context()` with
 * the engine's incremental state and with the pure reference definitions. Tasks of
 * several DAG shapes are driven through the engine (claims, worker reports, backoff on
 * a ManualClock, lease expiry through the reaper, operator repairs, cancellation), and
 * after EVERY change {@link expectParity} checks that:
 * - `step_readiness()` agrees with `evaluateReadiness()` (src/domain/readiness.ts) and
 *   with the incremental columns (`pending_parents`, `state`, `ready_at <= now`);
 * - `task_execution_context()` agrees with the `tasks` counters, with the task state
 *   the engine settled (`deriveTaskState`), and with the definitions in its SQL file.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { evaluateReadiness } from '../../src/domain/readiness.js';
import { CLAIMABLE_STEP_STATES, LEASED_STEP_STATES } from '../../src/domain/step-state.js';
import type { TaskState } from '../../src/domain/task-state.js';
import { deriveTaskState, stepCounts } from '../../src/domain/task-state.js';
import type { StepAssignment } from '../../src/engine/claims.js';
import type { ExecutionContext, ExecutionStatus } from '../../src/store/readiness-reads.js';
import { getExecutionContext, getStepReadiness } from '../../src/store/readiness-reads.js';
import type { TaskRecord } from '../../src/store/tasks.js';
import { backends } from '../support/databases.js';
import type { Harness, StepSpec } from './engine-fixtures.js';
import { createHarness, handlerOf, NO_JITTER, tmpl } from './engine-fixtures.js';

/** Execution statuses compatible with each task state the engine can settle to. */
const COMPATIBLE: Record<TaskState, readonly ExecutionStatus[]> = {
  pending: ['has_ready_steps'],
  in_progress: ['has_ready_steps', 'processing'],
  waiting_for_retry: ['waiting_for_retry', 'has_ready_steps'],
  blocked_by_failures: ['has_ready_steps', 'processing', 'waiting_for_retry'],
  error: ['blocked_by_failures'],
  cancelled: ['cancelled'],
  complete: ['all_complete'],
  resolved_manually: ['all_complete', 'has_ready_steps', 'processing', 'waiting_for_retry', 'blocked_by_failures', 'cancelled'],
};

/** task_execution_context() as its SQL file defines it, computed from the counters instead of the steps. */
function expectedContext(task: TaskRecord, ready: number, runningRetries: number): ExecutionContext {
  const c = task.stepCounts.byState;
  const total = task.stepCounts.total;
  const completed = c.complete + c.resolved_manually;
  const running = c.enqueued + c.in_progress;
  const inconsistent =
    completed < total && ready === 0 && running === 0 && c.waiting_for_retry === 0 && c.error === 0 && c.cancelled === 0 &&
    task.state !== 'cancelled';
  const executionStatus: ExecutionStatus =
    completed === total ? 'all_complete'
    : task.state === 'cancelled' ? 'cancelled'
    : ready > 0 ? 'has_ready_steps'
    : running > 0 ? 'processing'
    : c.waiting_for_retry > 0 ? 'waiting_for_retry'
    : c.error > 0 ? 'blocked_by_failures'
    : c.cancelled > 0 ? 'cancelled'
    : 'blocked_by_failures';
  const actions = {
    has_ready_steps: 'execute_ready_steps',
    processing: 'wait_for_completion',
    waiting_for_retry: 'wait_for_retry',
    blocked_by_failures: 'handle_failures',
    all_complete: 'finalize_task',
    cancelled: 'none',
  } as const;
  const finished = ['complete', 'cancelled', 'resolved_manually'].includes(task.state);
  return {
    taskId: task.id,
    taskState: task.state,
    totalSteps: total,
    pendingSteps: c.pending,
    inProgressSteps: running,
    waitingForRetrySteps: c.waiting_for_retry,
    completedSteps: completed,
    failedSteps: c.error,
    cancelledSteps: c.cancelled,
    readySteps: ready,
    executionStatus,
    recommendedAction: finished ? 'none' : actions[executionStatus],
    completionPercentage: total === 0 ? 100 : Math.round((10_000 * completed) / total) / 100,
    healthStatus:
      c.error > 0 ? 'blocked'
      : c.waiting_for_retry > 0 || runningRetries > 0 ? 'recovering'
      : inconsistent ? 'unknown'
      : 'healthy',
  };
}

/** Every task state, execution status, action and health status a parity check has seen (coverage of the scenarios). */
const seen = new Set<string>();

/** The parity check; `label` says which change it follows. Returns the number of ready steps. */
async function expectParity(h: Harness, taskId: string, label: string): Promise<number> {
  const db = h.t.database.db;
  const now = h.clock.now();
  const steps = [...(await h.steps(taskId)).values()];
  const { rows: edges } = await sql<{ from: string; to: string }>`
    select from_step_id as "from", to_step_id as "to" from workflow_step_edges where task_id = ${taskId}::uuid`.execute(db);
  const reference = evaluateReadiness(
    steps.map((s) => ({
      id: s.id,
      state: s.state,
      attempts: s.attempts,
      attemptBase: s.attemptBase,
      maxAttempts: s.maxAttempts,
      retryAt: s.readyAt,
    })),
    edges,
    now,
  );
  const rows = await getStepReadiness(db, taskId, now);
  expect(rows.map((r) => r.name), label).toEqual([...steps].sort((a, b) => a.position - b.position).map((s) => s.name));
  const byId = new Map(steps.map((s) => [s.id, s]));
  for (const r of rows) {
    const s = byId.get(r.stepId)!;
    const ref = reference.get(r.stepId)!;
    const where = `${label}: step ${s.name} (${s.state}, attempt ${s.attempts})`;
    // (b) the pure reference
    expect(
      { ready: r.ready, deps: r.allDependenciesSatisfied, eligible: r.retryEligible, unsatisfied: r.dependenciesTotal - r.dependenciesSatisfied, next: r.nextRetryAt?.getTime() ?? null },
      where,
    ).toEqual({ ready: ref.ready, deps: ref.dependenciesSatisfied, eligible: ref.retryEligible, unsatisfied: ref.pendingParents, next: ref.nextRetryAt?.getTime() ?? null });
    // (a) the incremental state the engine maintains
    const claimable = CLAIMABLE_STEP_STATES.includes(s.state) && s.pendingParents === 0 && s.readyAt !== null && s.readyAt <= now;
    expect({ claimable, pendingParents: s.pendingParents, parents: s.parentCount }, where).toEqual({
      claimable: r.ready,
      pendingParents: r.dependenciesTotal - r.dependenciesSatisfied,
      parents: r.dependenciesTotal,
    });
    expect({ state: r.state, attempts: r.attempts, base: r.attemptBase, max: r.maxAttempts, handler: r.handler }, where).toEqual({
      state: s.state, attempts: s.attempts, base: s.attemptBase, max: s.maxAttempts, handler: s.handler,
    });
  }
  const task = await h.task(taskId);
  const ready = rows.filter((r) => r.ready).length;
  const runningRetries = steps.filter((s) => LEASED_STEP_STATES.includes(s.state) && s.attempts > 1).length;
  const context = await getExecutionContext(db, taskId, now);
  expect(context, `${label}: execution context`).toEqual(expectedContext(task, ready, runningRetries));
  const readyPending = steps.some((s) => s.state === 'pending' && reference.get(s.id)!.dependenciesSatisfied);
  const derived = deriveTaskState(stepCounts(task.stepCounts.byState, readyPending));
  if (task.state !== 'cancelled' && task.state !== 'resolved_manually') {
    expect(task.state, `${label}: settled task state`).toBe(derived);
  }
  expect(COMPATIBLE[task.state], `${label}: status ${context?.executionStatus} for a ${task.state} task`).toContain(
    context?.executionStatus,
  );
  if (context) {
    for (const v of [`task:${task.state}`, `status:${context.executionStatus}`, `action:${context.recommendedAction}`, `health:${context.healthStatus}`]) seen.add(v);
  }
  return ready;
}

type Outcome = { kind: 'complete' } | { kind: 'fail'; retryable: boolean; retryAfterMs?: number } | { kind: 'abandon' };

/** How a scenario plays the worker and the operator. */
interface Script {
  /** What happens to an attempt; `failures` counts earlier failures of the step. */
  outcome(step: string, attempt: number, failures: number): Outcome;
  /** Called when nothing is claimable and no backoff is running; returns false to stop. */
  onStuck?(h: Harness, taskId: string): Promise<boolean>;
  /** Called after each claim; returns false to stop driving. */
  afterClaim?(h: Harness, taskId: string, round: number, batch: StepAssignment[]): Promise<boolean>;
}

/** Drives one task with `script`, checking parity after every change. Returns the final task. */
async function drive(h: Harness, taskId: string, handler: string, script: Script): Promise<TaskRecord> {
  const check = (label: string): Promise<number> => expectParity(h, taskId, label);
  const failures = new Map<string, number>();
  await check('created');
  for (let round = 0; round < 200; round++) {
    const batch = await h.claim(handler);
    await check(`round ${round}: claimed ${batch.map((a) => a.stepName).join(',') || 'nothing'}`);
    if (script.afterClaim && !(await script.afterClaim(h, taskId, round, batch))) {
      await check(`round ${round}: after claim hook`);
      return h.task(taskId);
    }
    if (batch.length === 0) {
      const due = (await getStepReadiness(h.t.database.db, taskId, h.clock.now()))
        .map((r) => r.nextRetryAt?.getTime() ?? Infinity)
        .filter((at) => at > h.clock.now().getTime() && at < Infinity);
      if (due.length > 0) {
        const next = Math.min(...due);
        if (next - 1 > h.clock.now().getTime()) {
          h.clock.set(new Date(next - 1));
          await check(`round ${round}: 1 ms before a backoff ends`);
        }
        h.clock.set(new Date(next));
        await check(`round ${round}: a backoff ends`);
        continue;
      }
      if (!script.onStuck || !(await script.onStuck(h, taskId))) return h.task(taskId);
      await check(`round ${round}: operator`);
      continue;
    }
    for (const [i, a] of batch.entries()) {
      const outcome = script.outcome(a.stepName, a.attempt, failures.get(a.stepName) ?? 0);
      if (outcome.kind === 'abandon') continue;
      if (i % 2 === 0) {
        const [ack] = await h.report([{ reportId: `s-${a.stepId}-${a.attempt}`, stepId: a.stepId, attempt: a.attempt, kind: 'started' }]);
        expect(ack?.status).toBe('accepted');
        await check(`round ${round}: ${a.stepName} started`);
      }
      h.clock.advance(10 + i);
      const ack =
        outcome.kind === 'complete' ? await h.complete(a)
        : await h.fail(a, { retryable: outcome.retryable, retryAfterMs: outcome.retryAfterMs ?? null });
      expect(ack.status).toBe('accepted');
      if (outcome.kind === 'fail') failures.set(a.stepName, (failures.get(a.stepName) ?? 0) + 1);
      await check(`round ${round}: ${a.stepName} attempt ${a.attempt} ${outcome.kind}`);
    }
  }
  throw new Error(`task ${taskId} did not settle within 200 rounds`);
}

const SHAPES: ReadonlyArray<{ shape: string; steps: StepSpec[]; victim: string }> = [
  { shape: 'linear', steps: [['a'], ['b', ['a']], ['c', ['b']], ['d', ['c']]], victim: 'b' },
  { shape: 'diamond', steps: [['a'], ['b', ['a']], ['c', ['a']], ['d', ['b', 'c']]], victim: 'b' },
  { shape: 'merge', steps: [['a'], ['b'], ['c'], ['d', ['a', 'b', 'c']], ['e', ['d']]], victim: 'b' },
  {
    shape: 'tree',
    steps: [['a'], ['b', ['a']], ['c', ['a']], ['d', ['b']], ['e', ['b']], ['f', ['c']], ['g', ['c']]],
    victim: 'b',
  },
  {
    shape: 'mixed',
    steps: [['a'], ['f'], ['b', ['a']], ['c', ['a']], ['d', ['b', 'c']], ['e', ['c']], ['g', ['e', 'f']], ['h', ['d', 'g', 'a']]],
    victim: 'c',
  },
];

/** Finds a step id by name. */
async function stepId(h: Harness, taskId: string, name: string): Promise<string> {
  return (await h.steps(taskId)).get(name)!.id;
}

describe.each(backends)('step_readiness / task_execution_context parity on $name', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    seen.clear();
    h = await createHarness(backend);
  });
  afterAll(async () => {
    await h?.close();
  });

  /** Registers a template of `shape` for one scenario, creates a task and drives it. */
  async function play(shape: (typeof SHAPES)[number], scenario: string, script: Script, maxAttempts?: number): Promise<TaskRecord> {
    const name = `parity-${shape.shape}-${scenario}`;
    const steps = shape.steps.map(([step, deps, extra]): StepSpec =>
      step === shape.victim && maxAttempts ? [step, deps, { ...extra, retry: { ...NO_JITTER, maxAttempts } }] : [step, deps, extra],
    );
    const task = await h.start(tmpl(name, steps));
    return drive(h, task.id, handlerOf(name), script);
  }

  describe.each(SHAPES)('$shape', (shape) => {
    test('retryable failures with backoff, then completion', async () => {
      const position = new Map(shape.steps.map(([s], i) => [s, i]));
      const final = await play(shape, 'retries', {
        outcome: (step, _attempt, failures) =>
          failures === 0 && position.get(step)! % 2 === 0
            ? { kind: 'fail', retryable: true, retryAfterMs: position.get(step) === 0 ? undefined : 5_000 }
            : { kind: 'complete' },
      });
      expect(final.state).toBe('complete');
    });

    test('a permanent failure blocks the task until an operator retries the step', async () => {
      let repaired = false;
      const final = await play(shape, 'repair', {
        outcome: (step, _attempt, failures) =>
          step === shape.victim && failures === 0 ? { kind: 'fail', retryable: false } : { kind: 'complete' },
        async onStuck(hh, taskId) {
          if (repaired) return false;
          expect((await hh.task(taskId)).state).toBe('error');
          await hh.manager.retryStep(await stepId(hh, taskId, shape.victim), 'parity');
          repaired = true;
          return true;
        },
      });
      expect(repaired).toBe(true);
      expect(final.state).toBe('complete');
    });

    test('exhausted attempts, then the operator resolves the step by hand', async () => {
      let resolved = false;
      const final = await play(
        shape,
        'resolve',
        {
          outcome: (step) => (step === shape.victim ? { kind: 'fail', retryable: true, retryAfterMs: 2_000 } : { kind: 'complete' }),
          async onStuck(hh, taskId) {
            if (resolved) return false;
            await hh.manager.resolveStep(await stepId(hh, taskId, shape.victim), 'parity');
            resolved = true;
            return true;
          },
        },
        2,
      );
      expect(resolved).toBe(true);
      expect(final.state).toBe('complete');
    });

    test('a lease that runs out returns the step through the reaper', async () => {
      let expired = false;
      const final = await play(shape, 'lease', {
        outcome: (step, attempt) => (step === shape.victim && attempt === 1 ? { kind: 'abandon' } : { kind: 'complete' }),
        async onStuck(hh) {
          if (expired) return false;
          hh.clock.advance(30_001);
          const tick = await hh.reaper.tick();
          expect(tick.expiredLeases).toBe(1);
          expired = true;
          return true;
        },
      });
      expect(expired).toBe(true);
      expect(final.state).toBe('complete');
    });

    test('cancelling while steps are leased', async () => {
      const final = await play(shape, 'cancel', {
        outcome: () => ({ kind: 'complete' }),
        async afterClaim(hh, taskId, round) {
          if (round < 1) return true;
          await hh.manager.cancelTask(taskId, 'parity');
          return false;
        },
      });
      expect(final.state).toBe('cancelled');
    });
  });

  test('a 150-step layered DAG with group-committed outcomes and random failures', async () => {
    let seed = 7;
    const random = (): number => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);
    const spec: StepSpec[] = [];
    for (let i = 0; i < 150; i++) {
      const layer = Math.floor(i / 10);
      const deps = layer === 0 ? [] : [...new Set([0, 1, 2].map(() => `s${(layer - 1) * 10 + Math.floor(random() * 10)}`))];
      spec.push([`s${i}`, deps]);
    }
    const task = await h.start(tmpl('parity-large', spec));
    const handler = handlerOf('parity-large');
    for (let round = 0; round < 500; round++) {
      const batch = await h.claim(handler, { limit: 25 });
      await expectParity(h, task.id, `large round ${round} claim`);
      if (batch.length === 0) {
        const state = (await h.task(task.id)).state;
        if (state === 'complete') return;
        h.clock.advance(1_000);
        await expectParity(h, task.id, `large round ${round} +1s`);
        continue;
      }
      const acks = await h.report(
        batch.map((a) =>
          random() < 0.2 && a.attempt < 3
            ? { reportId: `f-${a.stepId}-${a.attempt}`, stepId: a.stepId, attempt: a.attempt, kind: 'failed' as const,
                error: { errorClass: 'Flaky', message: 'flaky', retryable: true, retryAfterMs: Math.floor(random() * 3_000) } }
            : { reportId: `c-${a.stepId}-${a.attempt}`, stepId: a.stepId, attempt: a.attempt, kind: 'completed' as const,
                resultJson: '{"ok":true}' },
        ),
      );
      expect(acks.every((a) => a.status === 'accepted')).toBe(true);
      await expectParity(h, task.id, `large round ${round} outcomes`);
    }
    throw new Error('the large task did not complete');
  });

  test('the scenarios reached every task state, execution status and health the engine can produce', () => {
    const expected = [
      ...['pending', 'in_progress', 'waiting_for_retry', 'blocked_by_failures', 'error', 'complete', 'cancelled'].map((s) => `task:${s}`),
      ...['has_ready_steps', 'processing', 'waiting_for_retry', 'blocked_by_failures', 'all_complete', 'cancelled'].map((s) => `status:${s}`),
      ...['execute_ready_steps', 'wait_for_completion', 'wait_for_retry', 'handle_failures', 'none'].map((s) => `action:${s}`),
      ...['healthy', 'recovering', 'blocked'].map((s) => `health:${s}`),
    ];
    expect([...seen].filter((v) => expected.includes(v)).sort()).toEqual(expected.sort());
  });

  test('the check catches a corrupted readiness counter and corrupted task counters', async () => {
    const task = await h.start(tmpl('parity-corrupt', [['a'], ['b', ['a']]]));
    const db = h.t.database.db;
    await expectParity(h, task.id, 'intact');
    await sql`update workflow_steps set pending_parents = 0, ready_at = ${h.clock.now()} where task_id = ${task.id}::uuid and name = 'b'`.execute(db);
    await expect(expectParity(h, task.id, 'pending_parents corrupted')).rejects.toThrow(/step b/);
    await sql`update workflow_steps set pending_parents = 1, ready_at = null where task_id = ${task.id}::uuid and name = 'b'`.execute(db);
    await expectParity(h, task.id, 'repaired');
    await sql`update tasks set steps_pending = steps_pending - 1, steps_complete = steps_complete + 1 where id = ${task.id}::uuid`.execute(db);
    await expect(expectParity(h, task.id, 'counters corrupted')).rejects.toThrow(/execution context/);
  });
});
