-- system_health_counts(now): one row of system-wide counts for GetSystemHealth.
--
--   tasks_total, tasks_<state>   tasks per state (every task state has a column)
--   steps_total, steps_<state>   steps per state, summed from the per-state counters on
--                                `tasks` rather than counted over workflow_steps: one pass
--                                over tasks instead of one over every step (roughly ten
--                                times fewer rows); the counters move in the same statement
--                                as the steps, so the sums are exact at any snapshot
--   ready_steps                  steps claimable at p_now by the engine's own rule
--                                (state pending/waiting_for_retry, pending_parents = 0,
--                                ready_at <= p_now): read from workflow_steps_ready_idx,
--                                whose predicate is repeated literally below, so only
--                                claimable rows are visited
--   oldest_ready_at              the earliest ready_at among them (NULL when none)
--   oldest_ready_age_ms          p_now - oldest_ready_at in milliseconds (NULL when none):
--                                how long the most patient ready step has waited
--   sessions_active              worker sessions in state active and not expired at p_now
--                                (connected or disconnected but resumable)
--   sessions_draining            sessions draining and not expired
--   sessions_connected           sessions with a stream attached (connected), active or
--                                draining, not expired: AdminService's active_sessions
--   sessions_in_flight_capacity  sum of max_in_flight over the connected sessions
CREATE OR REPLACE FUNCTION system_health_counts(p_now timestamptz DEFAULT now())
RETURNS TABLE (
  tasks_total                 bigint,
  tasks_pending               bigint,
  tasks_in_progress           bigint,
  tasks_waiting_for_retry     bigint,
  tasks_blocked_by_failures   bigint,
  tasks_complete              bigint,
  tasks_error                 bigint,
  tasks_cancelled             bigint,
  tasks_resolved_manually     bigint,
  steps_total                 bigint,
  steps_pending               bigint,
  steps_enqueued              bigint,
  steps_in_progress           bigint,
  steps_waiting_for_retry     bigint,
  steps_complete              bigint,
  steps_error                 bigint,
  steps_cancelled             bigint,
  steps_resolved_manually     bigint,
  ready_steps                 bigint,
  oldest_ready_at             timestamptz,
  oldest_ready_age_ms         bigint,
  sessions_active             bigint,
  sessions_draining           bigint,
  sessions_connected          bigint,
  sessions_in_flight_capacity bigint
)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  WITH task_counts AS (
    SELECT count(*) AS total,
           count(*) FILTER (WHERE t.state = 'pending') AS pending,
           count(*) FILTER (WHERE t.state = 'in_progress') AS in_progress,
           count(*) FILTER (WHERE t.state = 'waiting_for_retry') AS waiting_for_retry,
           count(*) FILTER (WHERE t.state = 'blocked_by_failures') AS blocked_by_failures,
           count(*) FILTER (WHERE t.state = 'complete') AS complete,
           count(*) FILTER (WHERE t.state = 'error') AS error,
           count(*) FILTER (WHERE t.state = 'cancelled') AS cancelled,
           count(*) FILTER (WHERE t.state = 'resolved_manually') AS resolved_manually,
           coalesce(sum(t.steps_total), 0)::bigint AS s_total,
           coalesce(sum(t.steps_pending), 0)::bigint AS s_pending,
           coalesce(sum(t.steps_enqueued), 0)::bigint AS s_enqueued,
           coalesce(sum(t.steps_in_progress), 0)::bigint AS s_in_progress,
           coalesce(sum(t.steps_waiting_for_retry), 0)::bigint AS s_waiting_for_retry,
           coalesce(sum(t.steps_complete), 0)::bigint AS s_complete,
           coalesce(sum(t.steps_error), 0)::bigint AS s_error,
           coalesce(sum(t.steps_cancelled), 0)::bigint AS s_cancelled,
           coalesce(sum(t.steps_resolved_manually), 0)::bigint AS s_resolved_manually
    FROM tasks t
  ),
  ready AS (
    SELECT count(*) AS n, min(s.ready_at) AS oldest
    FROM workflow_steps s
    WHERE s.state IN ('pending', 'waiting_for_retry') AND s.pending_parents = 0
      AND s.ready_at <= p_now
  ),
  sessions AS (
    SELECT count(*) FILTER (WHERE w.state = 'active') AS active,
           count(*) FILTER (WHERE w.state = 'draining') AS draining,
           count(*) FILTER (WHERE w.connected) AS connected,
           coalesce(sum(w.max_in_flight) FILTER (WHERE w.connected), 0)::bigint AS capacity
    FROM worker_sessions w
    WHERE w.state IN ('active', 'draining') AND w.expires_at > p_now
  )
  SELECT tc.total, tc.pending, tc.in_progress, tc.waiting_for_retry, tc.blocked_by_failures, tc.complete, tc.error,
         tc.cancelled, tc.resolved_manually,
         tc.s_total, tc.s_pending, tc.s_enqueued, tc.s_in_progress, tc.s_waiting_for_retry, tc.s_complete, tc.s_error,
         tc.s_cancelled, tc.s_resolved_manually,
         r.n, r.oldest,
         floor(extract(epoch FROM (p_now - r.oldest)) * 1000)::bigint,
         se.active, se.draining, se.connected, se.capacity
  FROM task_counts tc, ready r, sessions se
$$;

COMMENT ON FUNCTION system_health_counts(timestamptz) IS
  'System-wide task/step counts, ready steps and worker sessions at p_now; see sql/30_system_health_counts.sql.';
