-- Write-path tuning for the claim -> report -> commit loop (src/store/steps.ts,
-- src/store/step-changes.ts, src/store/task-changes.ts).
--
-- Measured engine-level on PostgreSQL 15 (fsync on), single-step tasks, 256 steps per
-- claim and per group commit, WAL records per step, by statement after this change:
-- claim 28.6, outcome 19.9, task settle 14.7, lock 1.2 (64 in all; 90 before the
-- write-path rework). Most of them are index entries: every UPDATE that changes
-- `state` is non-HOT (state is in the key or predicate of the partial indexes), so it
-- adds an entry to every index whose predicate the new row version matches.

-- Nothing reads step transitions by task (GetStepAudit reads by step,
-- workflow_step_transitions_step_idx; the task's own audit is task_transitions). The
-- index cost one entry per step transition — three to four per step run.
DROP INDEX workflow_step_transitions_task_idx;

-- Room on each page for the next versions of a row. Tasks and steps are inserted
-- densely at creation and each is then updated several times while it runs (a task
-- once per commit that moves one of its steps). With full pages every update moves
-- the row version to another page (free-space-map search, often a new page); with
-- room it stays on its page and, when no indexed column changes — a task whose
-- counters move while its state stays `in_progress`, a step whose lease is renewed —
-- the update is HOT (no index entries at all). Page pruning reclaims the dead
-- versions in place. Applies to pages written from now on.
ALTER TABLE tasks SET (fillfactor = 80);
ALTER TABLE workflow_steps SET (fillfactor = 85);
