import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { ClaimedBatch, StepAssignment } from '../../src/engine/claims.js';
import { claimSteps } from '../../src/engine/claims.js';
import { ServerMessage } from '../../src/gen/tasker/v1/worker.js';
import { batchMessage } from '../../src/grpc/mappers/worker.js';
import { assignmentBytes } from '../../src/store/step-claims.js';
import { listStepTransitions } from '../../src/store/transitions.js';
import { backends } from '../support/databases.js';
import type { Harness, StepSpec } from './engine-fixtures.js';
import { createHarness, handlerOf, tmpl } from './engine-fixtures.js';

const BUDGET = 256 * 1024;

/** A result of about `kb` KiB. */
const bulky = (name: string, kb: number) => ({ name, blob: name.padEnd(kb * 1024, '.') });

/** Every ancestor of each step of `spec`, by name. */
function ancestorsOf(spec: readonly StepSpec[]): Map<string, Set<string>> {
  const parents = new Map(spec.map(([name, deps = []]) => [name, deps]));
  const out = new Map<string, Set<string>>();
  const visit = (name: string): Set<string> => {
    const known = out.get(name);
    if (known) return known;
    const set = new Set<string>();
    for (const p of parents.get(name) ?? []) {
      set.add(p);
      for (const a of visit(p)) set.add(a);
    }
    out.set(name, set);
    return set;
  };
  for (const [name] of spec) visit(name);
  return out;
}

describe.each(backends)('claims on $name', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(backend);
  });
  afterAll(async () => {
    await h?.close();
  });

  const claim = (handler: string, limit: number, maxBatchBytes?: number): Promise<ClaimedBatch> =>
    claimSteps(h.t.database.db, {
      sessionId: h.sessionId,
      handlers: [handler],
      limit,
      leaseMs: 30_000,
      now: h.clock.now(),
      ...(maxBatchBytes !== undefined ? { maxBatchBytes } : {}),
    });

  const completeAll = async (assignments: readonly StepAssignment[], result: (a: StepAssignment) => unknown) => {
    for (const a of assignments) expect((await h.complete(a, result(a))).status).toBe('accepted');
  };

  test('a claim over steps with large ancestor results stays within the byte budget; the rest stay ready for the next claims', async () => {
    const name = 'budget';
    const spec: StepSpec[] = [['r1'], ['r2'], ['mid', ['r1', 'r2']]];
    for (let i = 1; i <= 24; i++) spec.push([`c${i}`, ['mid']]);
    const task = await h.start(tmpl(name, spec));
    const handler = handlerOf(name);
    await completeAll((await claim(handler, 100, BUDGET)).assignments, (a) => bulky(a.stepName, 12));
    await completeAll((await claim(handler, 100, BUDGET)).assignments, (a) => bulky(a.stepName, 12));

    // Each child carries r1, r2 and mid (~36 KiB): the budget takes a handful per claim.
    const seen: StepAssignment[] = [];
    let claims = 0;
    for (;;) {
      const batch = await claim(handler, 100, BUDGET);
      if (batch.assignments.length === 0) break;
      claims += 1;
      const bytes = batch.assignments.reduce((sum, a) => sum + assignmentBytes(a), 0);
      expect(bytes).toBeLessThanOrEqual(BUDGET);
      expect(ServerMessage.encode(batchMessage(batch)).finish().length).toBeLessThanOrEqual(BUDGET);
      const steps = await h.steps(task.id);
      const left = [...steps.values()].filter((s) => s.state === 'pending' && s.pendingParents === 0).length;
      expect(batch.leftByBudget).toBe(Math.min(left, 100 - batch.assignments.length));
      seen.push(...batch.assignments);
      await completeAll(batch.assignments, (a) => ({ child: a.stepName }));
    }
    expect(claims).toBeGreaterThan(3);
    expect(seen.map((a) => a.stepName).sort()).toEqual(spec.slice(3).map(([n]) => n).sort());
    for (const a of seen) {
      expect(JSON.parse(a.ancestorResultsJson)).toEqual({ r1: bulky('r1', 12), r2: bulky('r2', 12), mid: bulky('mid', 12) });
    }
    expect((await h.task(task.id)).state).toBe('complete');
  });

  test('without a byte budget the claim takes every ready step up to the limit', async () => {
    const name = 'nobudget';
    const spec: StepSpec[] = [['r'], ...Array.from({ length: 10 }, (_, i): StepSpec => [`c${i}`, ['r']])];
    await h.start(tmpl(name, spec));
    await completeAll((await claim(handlerOf(name), 10)).assignments, (a) => bulky(a.stepName, 64));
    const batch = await claim(handlerOf(name), 10);
    expect(batch.assignments).toHaveLength(10);
    expect(batch.leftByBudget).toBe(0);
  });

  test('a step whose ancestor results alone exceed the budget fails at once, not retryable, and is not sent', async () => {
    const name = 'oversized';
    const spec: StepSpec[] = [['big'], ['small'], ['child', ['big']], ['other', ['small']]];
    const task = await h.start(tmpl(name, spec));
    const handler = handlerOf(name);
    await completeAll((await claim(handler, 10, BUDGET)).assignments, (a) =>
      a.stepName === 'big' ? bulky('big', 300) : { small: true },
    );
    const first = await claim(handler, 10, BUDGET);
    const second = await claim(handler, 10, BUDGET);
    const sent = [...first.assignments, ...second.assignments].map((a) => a.stepName);
    const oversized = [...(first.oversized ?? []), ...(second.oversized ?? [])];
    expect(sent).toEqual(['other']);
    expect(oversized).toHaveLength(1);
    expect(oversized[0]!.bytes).toBeGreaterThan(BUDGET);
    const child = (await h.steps(task.id)).get('child')!;
    expect(child.state).toBe('error');
    expect(child.lastError).toMatchObject({ error_class: 'AssignmentTooLarge', code: 'ASSIGNMENT_TOO_LARGE', retryable: false });
    // The server failed it at dispatch, not a worker: the audit and the event say so.
    expect(child.lastError).toMatchObject({ origin: 'dispatch' });
    const db = h.t.database.db;
    const failed = (await listStepTransitions(db, child.id)).filter((t) => t.to === 'error');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ event: 'fail_permanent', metadata: { outcome: 'permanent', error: { origin: 'dispatch' } } });
    const { rows: events } = await sql<{ payload: { error: { origin: string; code: string } } }>`
      select payload from tasker_events where step_id = ${child.id}::uuid and event_type = 'step.failed'`.execute(db);
    expect(events.map((e) => [e.payload.error.origin, e.payload.error.code])).toEqual([['dispatch', 'ASSIGNMENT_TOO_LARGE']]);
    await completeAll(first.assignments.concat(second.assignments), () => ({ ok: true }));
    expect((await h.task(task.id)).state).toBe('error');
  });

  test('ancestor results match a reference closure when one claim spans several tasks and depths', async () => {
    const name = 'closure';
    const spec: StepSpec[] = [];
    const layers = [3, 4, 2, 5, 3, 4, 1];
    let made = 0;
    const layerNames: string[][] = [];
    layers.forEach((width, li) => {
      const layer = Array.from({ length: width }, (_, i) => `s${made + i}`);
      layer.forEach((stepName, i) => {
        const above = layerNames[li - 1] ?? [];
        const twoUp = layerNames[li - 2] ?? [];
        const deps = above.length === 0 ? [] : [above[i % above.length]!, above[(i * 7 + 1) % above.length]!];
        if (twoUp.length > 0 && i % 2 === 0) deps.push(twoUp[(i + 1) % twoUp.length]!);
        spec.push([stepName, [...new Set(deps)]]);
      });
      layerNames.push(layer);
      made += width;
    });
    const expected = ancestorsOf(spec);
    const template = tmpl(name, spec);
    const tasks = [await h.start(template), await h.start(template)];
    const handler = handlerOf(name);
    const results = new Map<string, Record<string, unknown>>();
    for (;;) {
      const batch = await claim(handler, 3, BUDGET);
      if (batch.assignments.length === 0) break;
      for (const a of batch.assignments) results.set(`${a.taskId}/${a.stepName}`, JSON.parse(a.ancestorResultsJson));
      await completeAll(batch.assignments, (a) => ({ step: a.stepName, task: a.taskId }));
    }
    for (const task of tasks) {
      for (const [stepName, ancestors] of expected) {
        const want = Object.fromEntries([...ancestors].map((a) => [a, { step: a, task: task.id }]));
        expect(results.get(`${task.id}/${stepName}`), `${stepName} of ${task.id}`).toEqual(want);
      }
      expect((await h.task(task.id)).state).toBe('complete');
    }
  });
});
