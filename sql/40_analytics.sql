-- Analytics over a time window that starts at p_since (GetAnalytics). Windows are
-- selected through workflow_steps_completed_idx and tasks_completed_idx
-- (migrations/0003_read_side.sql), so the cost follows the rows finished in the window,
-- not the size of the tables. "Finished" means completed_at is set: the row reached a
-- terminal state (complete, error, cancelled, resolved_manually) and was not reopened.

-- analytics_throughput(since): one row per minute (date_trunc('minute', completed_at))
-- in which at least one task or step finished, oldest first. Minutes without activity
-- are absent (an old p_since must not produce a row per empty minute).
--   tasks_finished / steps_finished    reached any terminal state in that minute
--   tasks_completed / steps_completed  of those, the ones in state complete
CREATE OR REPLACE FUNCTION analytics_throughput(p_since timestamptz)
RETURNS TABLE (
  minute          timestamptz,
  tasks_finished  bigint,
  tasks_completed bigint,
  steps_finished  bigint,
  steps_completed bigint
)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  WITH t AS (
    SELECT date_trunc('minute', x.completed_at) AS m, count(*) AS finished,
           count(*) FILTER (WHERE x.state = 'complete') AS completed
    FROM tasks x
    WHERE x.completed_at IS NOT NULL AND x.completed_at >= p_since
    GROUP BY 1
  ),
  s AS (
    SELECT date_trunc('minute', x.completed_at) AS m, count(*) AS finished,
           count(*) FILTER (WHERE x.state = 'complete') AS completed
    FROM workflow_steps x
    WHERE x.completed_at IS NOT NULL AND x.completed_at >= p_since
    GROUP BY 1
  )
  SELECT coalesce(t.m, s.m), coalesce(t.finished, 0), coalesce(t.completed, 0),
         coalesce(s.finished, 0), coalesce(s.completed, 0)
  FROM t FULL JOIN s ON s.m = t.m
  ORDER BY 1
$$;

-- analytics_slowest_steps(since, limit): steps in state complete that finished at or
-- after p_since, longest first (ties by step_id). duration_ms = completed_at - started_at,
-- i.e. the run time of the last attempt (started_at is that attempt's StepStarted).
-- Steps completed without being started (an operator's CompleteStep) have no duration
-- and are left out.
CREATE OR REPLACE FUNCTION analytics_slowest_steps(p_since timestamptz, p_limit int DEFAULT 10)
RETURNS TABLE (
  step_id      uuid,
  task_id      uuid,
  name         text,
  handler      text,
  namespace    text,
  task_name    text,
  attempts     int,
  duration_ms  bigint,
  started_at   timestamptz,
  completed_at timestamptz
)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  -- The window's steps are ranked and cut to p_limit before their tasks are joined.
  WITH slowest AS (
    SELECT s.id, s.task_id, s.name, s.handler, s.attempts, s.started_at, s.completed_at,
           s.completed_at - s.started_at AS took
    FROM workflow_steps s
    WHERE s.completed_at IS NOT NULL AND s.completed_at >= p_since
      AND s.state = 'complete' AND s.started_at IS NOT NULL
    ORDER BY took DESC, s.id
    LIMIT greatest(p_limit, 0)
  )
  SELECT x.id, x.task_id, x.name, x.handler, t.namespace, t.name, x.attempts,
         round(extract(epoch FROM x.took) * 1000)::bigint, x.started_at, x.completed_at
  FROM slowest x
  JOIN tasks t ON t.id = x.task_id
  ORDER BY x.took DESC, x.id
$$;

-- analytics_slowest_tasks(since, limit): tasks in state complete that finished at or
-- after p_since, longest first (ties by task_id). duration_ms = completed_at - created_at.
CREATE OR REPLACE FUNCTION analytics_slowest_tasks(p_since timestamptz, p_limit int DEFAULT 10)
RETURNS TABLE (
  task_id      uuid,
  namespace    text,
  name         text,
  version      text,
  steps_total  int,
  duration_ms  bigint,
  created_at   timestamptz,
  completed_at timestamptz
)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  SELECT t.id, t.namespace, t.name, t.version, t.steps_total,
         round(extract(epoch FROM (t.completed_at - t.created_at)) * 1000)::bigint,
         t.created_at, t.completed_at
  FROM tasks t
  WHERE t.completed_at IS NOT NULL AND t.completed_at >= p_since AND t.state = 'complete'
  ORDER BY t.completed_at - t.created_at DESC, t.id
  LIMIT greatest(p_limit, 0)
$$;

COMMENT ON FUNCTION analytics_throughput(timestamptz) IS 'Tasks and steps finished per minute since p_since; see sql/40_analytics.sql.';
COMMENT ON FUNCTION analytics_slowest_steps(timestamptz, int) IS 'Slowest completed steps since p_since; see sql/40_analytics.sql.';
COMMENT ON FUNCTION analytics_slowest_tasks(timestamptz, int) IS 'Slowest completed tasks since p_since; see sql/40_analytics.sql.';
