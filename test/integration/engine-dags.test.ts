import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { evaluateReadiness } from '../../src/domain/readiness.js';
import { CLAIMABLE_STEP_STATES } from '../../src/domain/step-state.js';
import { EVENTS_CHANNEL, READY_CHANNEL, readEvents } from '../../src/store/events.js';
import { listStepTransitions, listTaskTransitions } from '../../src/store/transitions.js';
import { backends } from '../support/databases.js';
import type { Harness, StepSpec } from './engine-fixtures.js';
import { createHarness, handlerOf, runToCompletion, tmpl } from './engine-fixtures.js';

/** Checks the incremental readiness columns against the reference definition. */
async function expectReadinessMatchesReference(h: Harness, taskId: string): Promise<void> {
  const steps = [...(await h.steps(taskId)).values()];
  const { rows: edges } = await sql<{ from: string; to: string }>`
    select from_step_id as "from", to_step_id as "to" from workflow_step_edges where task_id = ${taskId}::uuid`.execute(
    h.t.database.db,
  );
  const now = h.clock.now();
  const reference = evaluateReadiness(
    steps.map((s) => ({ id: s.id, state: s.state, attempts: s.attempts, maxAttempts: s.maxAttempts, retryAt: s.readyAt })),
    edges,
    now,
  );
  for (const s of steps) {
    const ref = reference.get(s.id);
    expect(s.pendingParents, `pending_parents of ${s.name}`).toBe(ref?.pendingParents);
    const claimable =
      CLAIMABLE_STEP_STATES.includes(s.state) && s.pendingParents === 0 && s.readyAt !== null && s.readyAt <= now;
    expect(claimable, `readiness of ${s.name}`).toBe(ref?.ready);
  }
}

/** Runs a DAG to completion one claim round at a time; returns the step names claimed per round. */
async function runRounds(h: Harness, name: string, spec: StepSpec[]): Promise<{ taskId: string; rounds: string[][] }> {
  const task = await h.start(tmpl(name, spec));
  const rounds: string[][] = [];
  for (;;) {
    await expectReadinessMatchesReference(h, task.id);
    const batch = await h.claim(handlerOf(name));
    if (batch.length === 0) break;
    rounds.push(batch.map((a) => a.stepName).sort());
    for (const a of batch) expect((await h.complete(a, { from: a.stepName })).status).toBe('accepted');
  }
  return { taskId: task.id, rounds };
}

describe.each(backends)('engine DAG execution on $name', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(backend);
  });
  afterAll(async () => {
    await h?.close();
  });

  test('linear: one step at a time, task pending → in_progress → complete, every change audited', async () => {
    const task = await h.start(tmpl('linear', [['a'], ['b', ['a']], ['c', ['b']], ['d', ['c']]]));
    expect(task.state).toBe('pending');
    expect(task.stepCounts).toMatchObject({ total: 4, byState: { pending: 4 } });
    const order: string[] = [];
    for (;;) {
      const batch = await h.claim(handlerOf('linear'));
      if (batch.length === 0) break;
      expect(batch).toHaveLength(1);
      order.push(batch[0]!.stepName);
      if (order.length === 1) expect((await h.task(task.id)).state).toBe('in_progress');
      await h.complete(batch[0]!);
    }
    expect(order).toEqual(['a', 'b', 'c', 'd']);
    const done = await h.task(task.id);
    expect(done.state).toBe('complete');
    expect(done.completedAt).toEqual(h.clock.now());
    expect(done.stepCounts.byState.complete).toBe(4);

    const steps = await h.steps(task.id);
    expect((await listStepTransitions(h.t.database.db, steps.get('a')!.id)).map((t) => [t.from, t.to, t.event])).toEqual([
      [null, 'pending', 'create'],
      ['pending', 'enqueued', 'enqueue'],
      ['enqueued', 'complete', 'complete'],
    ]);
    expect((await listTaskTransitions(h.t.database.db, task.id)).map((t) => t.to)).toEqual(['pending', 'in_progress', 'complete']);
    const events = (await readEvents(h.t.database.db, { taskId: task.id })).map((e) => e.kind);
    expect(events[0]).toBe('task.created');
    expect(events).toContain('task.started');
    expect(events.filter((e) => e === 'step.completed')).toHaveLength(4);
    expect(events.at(-1)).toBe('task.completed');
  });

  test('diamond: branches run together, the join gets every ancestor result by name', async () => {
    const name = 'diamond';
    const task = await h.start(tmpl(name, [['a'], ['b', ['a']], ['c', ['a']], ['d', ['b', 'c']]]));
    const results = new Map<string, Record<string, unknown>>();
    const assignments = await runToCompletion(h, handlerOf(name), (a) => {
      results.set(a.stepName, JSON.parse(a.ancestorResultsJson));
      return { value: a.stepName.toUpperCase() };
    });
    expect(assignments.map((a) => a.stepName)).toEqual(['a', 'b', 'c', 'd']);
    expect(results.get('a')).toEqual({});
    expect(results.get('b')).toEqual({ a: { value: 'A' } });
    expect(results.get('d')).toEqual({ a: { value: 'A' }, b: { value: 'B' }, c: { value: 'C' } });
    expect((await h.task(task.id)).state).toBe('complete');
  });

  test('parallel merge: every root in one claim, the merge after the last of them', async () => {
    const { rounds, taskId } = await runRounds(h, 'merge', [['p1'], ['p2'], ['p3'], ['p4'], ['m', ['p1', 'p2', 'p3', 'p4']]]);
    expect(rounds).toEqual([['p1', 'p2', 'p3', 'p4'], ['m']]);
    expect((await h.task(taskId)).state).toBe('complete');
  });

  test('tree: leaves see their own lineage only', async () => {
    const name = 'tree';
    const spec: StepSpec[] = [['root'], ['l', ['root']], ['r', ['root']], ['l1', ['l']], ['l2', ['l']], ['r1', ['r']]];
    const task = await h.start(tmpl(name, spec));
    const seen = new Map<string, string[]>();
    await runToCompletion(h, handlerOf(name), (a) => {
      seen.set(a.stepName, Object.keys(JSON.parse(a.ancestorResultsJson)).sort());
      return a.stepName;
    });
    expect(seen.get('l1')).toEqual(['l', 'root']);
    expect(seen.get('r1')).toEqual(['r', 'root']);
    expect((await h.task(task.id)).state).toBe('complete');
  });

  test('mixed DAG with a skip-level edge: rounds follow the longest path, readiness matches the reference', async () => {
    const spec: StepSpec[] = [
      ['a'],
      ['b', ['a']],
      ['c', ['a']],
      ['d', ['b']],
      ['e', ['c', 'b']],
      ['f', ['d', 'e', 'a']],
      ['g'],
      ['h', ['g', 'f']],
    ];
    const { rounds, taskId } = await runRounds(h, 'mixed', spec);
    expect(rounds).toEqual([['a', 'g'], ['b', 'c'], ['d', 'e'], ['f'], ['h']]);
    expect((await h.task(taskId)).state).toBe('complete');
  });

  test('a 10,000-step template is created in one call with every step and edge', async () => {
    const name = 'huge';
    const width = 100;
    const spec: StepSpec[] = Array.from({ length: 10_000 }, (_, i) => [`s${i}`, i < width ? [] : [`s${i - width}`]]);
    const task = await h.start(tmpl(name, spec));
    expect(task.stepCounts.total).toBe(10_000);
    const db = h.t.database.db;
    const { rows } = await sql<{ steps: number; edges: number; roots: number }>`
      select (select count(*)::int from workflow_steps where task_id = ${task.id}::uuid) as steps,
             (select count(*)::int from workflow_step_edges where task_id = ${task.id}::uuid) as edges,
             (select count(*)::int from workflow_steps where task_id = ${task.id}::uuid and pending_parents = 0) as roots`.execute(db);
    expect(rows[0]).toEqual({ steps: 10_000, edges: 9_900, roots: width });
    const first = await h.claim(handlerOf(name), { limit: 1000 });
    expect(first).toHaveLength(width);
  }, 60_000);

  test('a commit that makes steps ready or appends events notifies listeners', async () => {
    const name = 'notify';
    const ready: string[] = [];
    const events: number[] = [];
    const stopReady = await h.t.database.listen(READY_CHANNEL, (p) => ready.push(p));
    const stopEvents = await h.t.database.listen(EVENTS_CHANNEL, (p) => events.push(Number(p)));
    try {
      const task = await h.start(tmpl(name, [['a'], ['b', ['a']]]));
      await expect.poll(() => ready.some((p) => p.split(',').includes(handlerOf(name)))).toBe(true);
      await expect.poll(() => events.length).toBeGreaterThan(0);
      const [a] = await h.claim(handlerOf(name));
      ready.length = 0;
      await h.complete(a!);
      await expect.poll(() => ready.some((p) => p.split(',').includes(handlerOf(name)))).toBe(true);
      const last = (await readEvents(h.t.database.db, { taskId: task.id })).at(-1)!;
      await expect.poll(() => events.includes(last.id)).toBe(true);
    } finally {
      await stopReady();
      await stopEvents();
    }
  });

  test('concurrent claimers never claim a step twice', async () => {
    const name = 'race';
    const spec: StepSpec[] = Array.from({ length: 300 }, (_, i) => [`r${i}`]);
    await h.start(tmpl(name, spec));
    const sessions = await Promise.all(Array.from({ length: 5 }, () => h.newSession()));
    const claimed = await Promise.all(
      sessions.map(async (sessionId) => {
        const mine: string[] = [];
        for (;;) {
          const batch = await h.claim(handlerOf(name), { sessionId, limit: 7 });
          if (batch.length === 0) return mine;
          mine.push(...batch.map((a) => a.stepId));
        }
      }),
    );
    const all = claimed.flat();
    expect(all).toHaveLength(300);
    expect(new Set(all).size).toBe(300);
    if (backend.name === 'postgres') expect(claimed.filter((c) => c.length > 0).length).toBeGreaterThan(1);
  });
});
