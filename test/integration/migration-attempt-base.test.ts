/**
 * Migration 0005 (`workflow_steps.attempt_base`) on a database holding steps an operator
 * retried under the old rule, which restarted their attempt numbers: a step not held by
 * a worker is renumbered so that its next attempt gets a number none had, with the
 * attempts of its current allowance still counted; a leased step and a step never
 * retried keep their numbers.
 */
import { copyFile, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, describe, expect, test } from 'vitest';
import { migrate } from '../../src/store/migrator.js';
import { backends } from '../support/databases.js';
import type { TestDatabase } from '../support/databases.js';
import { migrationsDir, sqlDir } from '../support/paths.js';

const TEMPLATE = '01900000-0000-7000-8000-000000000001';
const TASK = '01900000-0000-7000-8000-000000000002';
const RETRIED = '01900000-0000-7000-8000-000000000011';
const LEASED = '01900000-0000-7000-8000-000000000012';
const PLAIN = '01900000-0000-7000-8000-000000000013';
const RETRIED_TWICE = '01900000-0000-7000-8000-000000000014';

let root: string;
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

/** A migrations/ directory holding the real migrations before version 5, and an empty sql/. */
async function schemaBefore5(): Promise<{ migrationsDir: string; sqlDir: string }> {
  root ??= await mkdtemp(join(tmpdir(), 'tasker-migration-0005-'));
  const dir = await mkdtemp(join(root, 'case-'));
  const dirs = { migrationsDir: join(dir, 'migrations'), sqlDir: join(dir, 'sql') };
  await mkdir(dirs.migrationsDir);
  await mkdir(dirs.sqlDir);
  for (const file of await readdir(migrationsDir)) {
    if (/^000[1-4]_.*\.sql$/.test(file)) await copyFile(join(migrationsDir, file), join(dirs.migrationsDir, file));
  }
  return dirs;
}

/** A step row as the old rule left it: [id, name, state, attempts], and its audit rows as [attempt, event]. */
type OldStep = [string, string, string, number, Array<[number, string]>];

const STEPS: OldStep[] = [
  // Failed at attempts 1..3, retried by an operator (attempts reset to 0), not yet claimed again.
  [RETRIED, 'retried', 'pending', 0, [[1, 'enqueue'], [1, 'fail_retry'], [2, 'enqueue'], [2, 'fail_retry'], [3, 'enqueue'], [3, 'fail_permanent'], [0, 'manual_retry']]],
  // Retried after attempt 2 and running its new attempt 1: the worker holds that number.
  [LEASED, 'leased', 'in_progress', 1, [[1, 'enqueue'], [1, 'fail_retry'], [2, 'enqueue'], [2, 'fail_permanent'], [0, 'manual_retry'], [1, 'enqueue']]],
  // Never retried by an operator.
  [PLAIN, 'plain', 'error', 2, [[1, 'enqueue'], [1, 'fail_retry'], [2, 'enqueue'], [2, 'fail_permanent']]],
  // Failed at 1, retried, failed at the new 1 and 2 (waiting), so 2 attempts into its allowance.
  [RETRIED_TWICE, 'retried_twice', 'waiting_for_retry', 2, [[1, 'enqueue'], [1, 'fail_permanent'], [0, 'manual_retry'], [1, 'enqueue'], [1, 'fail_retry'], [2, 'enqueue'], [2, 'fail_retry']]],
];

async function insertOldSteps(t: TestDatabase): Promise<void> {
  const db = t.database.db;
  const now = new Date('2030-01-01T00:00:00Z');
  await sql`
    insert into task_templates (id, namespace, name, version, body, body_hash, step_count, created_at)
    values (${TEMPLATE}::uuid, 'test', 'old', '1.0.0', '{}'::jsonb, 'hash', 4, ${now})`.execute(db);
  await sql`
    insert into tasks (id, template_id, namespace, name, version, state, context, steps_total, steps_pending, steps_in_progress,
                       steps_waiting_for_retry, steps_error, created_at, updated_at)
    values (${TASK}::uuid, ${TEMPLATE}::uuid, 'test', 'old', '1.0.0', 'blocked_by_failures', '{}'::jsonb, 4, 1, 1, 1, 1,
            ${now}, ${now})`.execute(db);
  for (const [position, [id, name, state, attempts, audit]] of STEPS.entries()) {
    await sql`
      insert into workflow_steps (id, task_id, name, handler, position, state, attempts, max_attempts, retry, parent_count,
                                  pending_parents, created_at, updated_at)
      values (${id}::uuid, ${TASK}::uuid, ${name}, 'old.work', ${position}, ${state}, ${attempts}, 3, '{}'::jsonb, 0, 0,
              ${now}, ${now})`.execute(db);
    for (const [attempt, event] of audit) {
      await sql`
        insert into workflow_step_transitions (step_id, task_id, attempt, to_state, event, created_at)
        values (${id}::uuid, ${TASK}::uuid, ${attempt}, 'pending', ${event}, ${now})`.execute(db);
    }
  }
}

describe.each(backends)('migration 0005 on $name', ({ create }) => {
  test('renumbers steps retried under the old rule so no attempt number is used twice', async () => {
    const t = await create({ empty: true });
    try {
      await migrate(t.database, await schemaBefore5());
      await insertOldSteps(t);
      const result = await migrate(t.database, { migrationsDir, sqlDir });
      expect(result.applied).toEqual(['0005_step_attempt_base']);
      const { rows } = await sql<{ name: string; attempts: number; attempt_base: number }>`
        select name, attempts, attempt_base from workflow_steps order by position`.execute(t.database.db);
      expect(rows).toEqual([
        // Next attempt 4; a fresh allowance (0 used).
        { name: 'retried', attempts: 3, attempt_base: 3 },
        { name: 'leased', attempts: 1, attempt_base: 0 },
        { name: 'plain', attempts: 2, attempt_base: 0 },
        // Highest number 2 = its attempts: the next attempt, 3, is already new.
        { name: 'retried_twice', attempts: 2, attempt_base: 0 },
      ]);
      const readiness = await sql<{ name: string; retry_eligible: boolean; attempt_base: number }>`
        select name, retry_eligible, attempt_base from step_readiness(${TASK}::uuid, ${new Date('2030-01-02T00:00:00Z')})
        order by position`.execute(t.database.db);
      expect(readiness.rows.map((r) => [r.name, r.retry_eligible, r.attempt_base])).toEqual([
        ['retried', true, 3],
        ['leased', true, 0],
        ['plain', true, 0],
        ['retried_twice', true, 0],
      ]);
    } finally {
      await t.close();
    }
  });
});
