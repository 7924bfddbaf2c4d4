/**
 * The order of the events a group commit appends, as WatchTask and SubscribeEvents
 * deliver them (by event id): a step's start comes before the progress committed with
 * it, and that progress before the outcome committed with it; a progress report that
 * was already stored appends nothing.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { StepAssignment } from '../../src/engine/claims.js';
import type { OutcomeReport } from '../../src/engine/outcomes.js';
import { listStepTransitions } from '../../src/store/transitions.js';
import { backends } from '../support/databases.js';
import type { Harness } from './engine-fixtures.js';
import { createHarness, handlerOf, tmpl } from './engine-fixtures.js';

describe.each(backends)('progress events on $name', (backend) => {
  let h: Harness;
  beforeAll(async () => {
    h = await createHarness(backend);
  });
  afterAll(async () => {
    await h?.close();
  });

  let reports = 0;
  const report = (a: StepAssignment, kind: OutcomeReport['kind'], extra: Partial<OutcomeReport> = {}): OutcomeReport => {
    reports += 1;
    return { reportId: `p-${reports}`, stepId: a.stepId, attempt: a.attempt, kind, ...extra };
  };
  const progress = (a: StepAssignment, seq: number) => report(a, 'progress', { seq, payloadJson: JSON.stringify({ seq }) });

  /** The step's events in event-id order: type, and the progress seq when there is one. */
  const events = async (stepId: string): Promise<string[]> => {
    const { rows } = await sql<{ event_type: string; payload: { seq?: number | string } }>`
      select event_type, payload from tasker_events where step_id = ${stepId}::uuid order by id`.execute(h.t.database.db);
    return rows.map((r) => (r.payload.seq === undefined ? r.event_type : `${r.event_type} ${Number(r.payload.seq)}`));
  };

  test('a start and progress reported together: the start first, then the progress in order', async () => {
    const name = 'started-progress';
    await h.start(tmpl(name, [['only']]));
    const [a] = await h.claim(handlerOf(name));
    const acks = await h.report([report(a!, 'started'), progress(a!, 1), progress(a!, 2)]);
    expect(acks.map((x) => x.status)).toEqual(['accepted', 'accepted', 'accepted']);
    expect(await events(a!.stepId)).toEqual(['step.enqueued', 'step.started', 'step.progress 1', 'step.progress 2']);

    // Later progress alone, with a resend of one already stored: only the new one is appended.
    const later = await h.report([progress(a!, 2), progress(a!, 3)]);
    expect(later.map((x) => x.status)).toEqual(['duplicate', 'accepted']);
    expect((await events(a!.stepId)).slice(-2)).toEqual(['step.progress 2', 'step.progress 3']);
  });

  test('a start, progress and the outcome in one group: started, progress, completed', async () => {
    const name = 'started-progress-completed';
    const task = await h.start(tmpl(name, [['first'], ['second', ['first']]]));
    const [a] = await h.claim(handlerOf(name));
    const acks = await h.report([
      report(a!, 'started'),
      progress(a!, 1),
      progress(a!, 2),
      report(a!, 'completed', { resultJson: '{"done":true}' }),
    ]);
    expect(acks.every((x) => x.status === 'accepted')).toBe(true);
    expect(await events(a!.stepId)).toEqual([
      'step.enqueued',
      'step.started',
      'step.progress 1',
      'step.progress 2',
      'step.completed',
    ]);
    // The audit records the start before the completion, as before.
    const audit = (await listStepTransitions(h.t.database.db, a!.stepId)).map((t) => `${t.from}>${t.to}`);
    expect(audit.slice(-2)).toEqual(['enqueued>in_progress', 'in_progress>complete']);
    expect((await h.steps(task.id)).get('first')).toMatchObject({ state: 'complete', result: { done: true } });
  });

  test('several steps in one group: each step starts, then reports progress, then ends', async () => {
    const name = 'several';
    await h.start(tmpl(name, [['a'], ['b'], ['c']]));
    const batch = await h.claim(handlerOf(name));
    const [a, b, c] = ['a', 'b', 'c'].map((n) => batch.find((x) => x.stepName === n)!);
    expect((await h.report([report(c!, 'started')]))[0]?.status).toBe('accepted');
    const acks = await h.report([
      report(a!, 'started'),
      progress(b!, 1),
      report(b!, 'started'),
      progress(a!, 1),
      progress(c!, 1),
      report(a!, 'failed', { error: { errorClass: 'Boom', message: 'no', retryable: true } }),
      report(c!, 'completed', { resultJson: '1' }),
    ]);
    expect(acks.every((x) => x.status === 'accepted')).toBe(true);
    expect(await events(a!.stepId)).toEqual(['step.enqueued', 'step.started', 'step.progress 1', 'step.backoff']);
    // A leased step may report progress before StepStarted; committed together, the start still comes first.
    expect(await events(b!.stepId)).toEqual(['step.enqueued', 'step.started', 'step.progress 1']);
    expect(await events(c!.stepId)).toEqual(['step.enqueued', 'step.started', 'step.progress 1', 'step.completed']);
  });
});
