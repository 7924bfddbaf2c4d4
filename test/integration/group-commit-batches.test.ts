/**
 * BatchCompleted in the group commit, on both backends: a batch completes when its
 * last outcome is counted, whether its BatchCompleted arrives in the same group or in
 * a later one; a BatchCompleted before every outcome is counted still completes it;
 * one from another session or for an already completed batch changes nothing.
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { StepAssignment } from '../../src/engine/claims.js';
import type { SessionReport } from '../../src/engine/outcomes.js';
import { applyOutcomeGroup } from '../../src/engine/outcomes.js';
import { findBatch } from '../../src/store/batches.js';
import { lockSteps } from '../../src/store/steps.js';
import { backends } from '../support/databases.js';
import type { Harness } from './engine-fixtures.js';
import { createHarness, handlerOf, tmpl } from './engine-fixtures.js';

function completed(a: StepAssignment, sessionId: string): SessionReport {
  return { reportId: `c-${a.stepId}`, stepId: a.stepId, attempt: a.attempt, kind: 'completed', resultJson: '{}', sessionId };
}

function started(a: StepAssignment, sessionId: string): SessionReport {
  return { reportId: `s-${a.stepId}`, stepId: a.stepId, attempt: a.attempt, kind: 'started', sessionId };
}

describe.each(backends)('BatchCompleted in the group commit on $name', (backend) => {
  let h: Harness;

  beforeAll(async () => {
    h = await createHarness(backend);
  });
  afterAll(async () => {
    await h?.close();
  });

  /** A task of `name` with `steps` parallel steps, all claimed in one batch by the harness session. */
  async function claimedBatch(name: string, steps: number): Promise<{ batchId: string; assignments: StepAssignment[] }> {
    await h.start(tmpl(name, Array.from({ length: steps }, (_, i) => [`s${i}`] as [string])));
    const assignments = await h.claim(handlerOf(name));
    expect(assignments).toHaveLength(steps);
    const batchId = assignments[0]!.batchId;
    expect(assignments.every((a) => a.batchId === batchId)).toBe(true);
    return { batchId, assignments };
  }

  const group = (reports: SessionReport[], completions: Array<{ batchId: string; sessionId: string }>) =>
    applyOutcomeGroup(h.t.database.db, reports, h.clock.now(), { batchCompletions: completions });

  test('lockSteps reads each step with its batch as stored', async () => {
    const { batchId, assignments } = await claimedBatch('lock-batch', 2);
    await group([completed(assignments[0]!, h.sessionId)], []);
    const locked = await h.t.database.db.transaction().execute((trx) => lockSteps(trx, assignments.map((a) => a.stepId)));
    for (const a of assignments) {
      expect(locked.get(a.stepId)?.batch).toEqual({ id: batchId, sessionId: h.sessionId, state: 'executing', stepCount: 2, counted: 1 });
    }
    const one = await h.t.database.db.transaction().execute((trx) => lockSteps(trx, [assignments[1]!.stepId]));
    expect([...one.keys()]).toEqual([assignments[1]!.stepId]);
  });

  test('the last outcome and its BatchCompleted in one group complete the batch', async () => {
    const { batchId, assignments } = await claimedBatch('same-group', 2);
    await group([completed(assignments[0]!, h.sessionId)], []);
    const result = await group(
      [started(assignments[1]!, h.sessionId), completed(assignments[1]!, h.sessionId)],
      [{ batchId, sessionId: h.sessionId }],
    );
    expect(result.acks.map((a) => a.status)).toEqual(['accepted', 'accepted']);
    expect(await findBatch(h.t.database.db, batchId)).toMatchObject({
      state: 'completed',
      completedCount: 2,
      failedCount: 0,
      completedAt: h.clock.now(),
    });
  });

  test('a BatchCompleted with the first of two outcomes completes the batch', async () => {
    const { batchId, assignments } = await claimedBatch('early-completion', 2);
    await group([completed(assignments[0]!, h.sessionId)], [{ batchId, sessionId: h.sessionId }]);
    expect(await findBatch(h.t.database.db, batchId)).toMatchObject({ state: 'completed', completedCount: 1, failedCount: 0 });
  });

  test('a BatchCompleted alone completes a batch that is still executing', async () => {
    const { batchId, assignments } = await claimedBatch('alone', 1);
    await group([started(assignments[0]!, h.sessionId)], []);
    expect((await findBatch(h.t.database.db, batchId))?.state).toBe('executing');
    await group([], [{ batchId, sessionId: h.sessionId }]);
    expect(await findBatch(h.t.database.db, batchId)).toMatchObject({ state: 'completed', completedCount: 0 });
  });

  test('a BatchCompleted of another session moves nothing, with or without its steps in the group', async () => {
    const other = await h.newSession();
    const { batchId, assignments } = await claimedBatch('other-session', 2);
    await group([started(assignments[0]!, h.sessionId)], [{ batchId, sessionId: other }]);
    expect((await findBatch(h.t.database.db, batchId))?.state).toBe('executing');
    await group([], [{ batchId, sessionId: other }]);
    expect((await findBatch(h.t.database.db, batchId))?.state).toBe('executing');
  });

  test('a BatchCompleted for a batch completed earlier leaves it as it was', async () => {
    const { batchId, assignments } = await claimedBatch('repeated', 1);
    await group([completed(assignments[0]!, h.sessionId)], []);
    const before = await findBatch(h.t.database.db, batchId);
    expect(before?.state).toBe('completed');
    h.clock.advance(1_000);
    await group([completed(assignments[0]!, h.sessionId)], [{ batchId, sessionId: h.sessionId }]);
    await group([], [{ batchId, sessionId: h.sessionId }]);
    expect(await findBatch(h.t.database.db, batchId)).toEqual(before);
  });
});
