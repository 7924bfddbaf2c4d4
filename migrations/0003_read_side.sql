-- Indexes for the read side (sql/40_analytics.sql; src/store/admin-reads.ts).
--
-- Analytics select steps and tasks that finished inside a time window
-- (`completed_at >= since`). Without these, every GetAnalytics call would scan all of
-- workflow_steps. completed_at is written once, by the update that moves a row to a
-- terminal state; that update already changes `state`, which other indexes cover, so it
-- was never a HOT update and the extra index entry is the only added cost. Partial: rows
-- still running are not indexed.
CREATE INDEX workflow_steps_completed_idx ON workflow_steps (completed_at) WHERE completed_at IS NOT NULL;
CREATE INDEX tasks_completed_idx ON tasks (completed_at) WHERE completed_at IS NOT NULL;
