-- task_execution_context(task, now): one row summarizing a task's progress, computed
-- from its steps through step_readiness() (the DAG), not from the per-state counters on
-- `tasks` — so comparing the two is a parity check of the counters. An unknown task gives
-- no row.
--
-- Counts (they add up: pending + in_progress + waiting_for_retry + completed + failed +
-- cancelled = total):
--   total_steps              every step of the task
--   pending_steps            state pending (ready or blocked by parents)
--   in_progress_steps        state enqueued or in_progress (held by a worker)
--   waiting_for_retry_steps  state waiting_for_retry (backoff running or over)
--   completed_steps          state complete or resolved_manually
--   failed_steps             state error (failed permanently)
--   cancelled_steps          state cancelled
--   ready_steps              step_readiness(...).ready: claimable at p_now
--
-- execution_status, the first rule that matches:
--   all_complete         completed_steps = total_steps (also a task without steps)
--   cancelled            the task itself is cancelled (a cancelled task may keep error steps)
--   has_ready_steps      ready_steps > 0
--   processing           in_progress_steps > 0
--   waiting_for_retry    waiting_for_retry_steps > 0 (none of them due yet, or it would be ready)
--   blocked_by_failures  failed_steps > 0: nothing can run until an operator acts
--   cancelled            cancelled_steps > 0 (steps cancelled, task not yet settled)
--   blocked_by_failures  otherwise: nothing can run although nothing failed — the steps are
--                        inconsistent (deriveTaskState calls this `error`); health `unknown`
--
-- recommended_action:
--   none                 the task is complete, cancelled or resolved_manually (finished), or
--                        execution_status is cancelled
--   execute_ready_steps  has_ready_steps
--   wait_for_completion  processing
--   wait_for_retry       waiting_for_retry
--   handle_failures      blocked_by_failures
--   finalize_task        all_complete while the task is not yet complete (unsettled)
--
-- completion_percentage: round(100 * completed_steps / total_steps, 2); 100.00 without steps.
--
-- health_status, the first rule that matches:
--   blocked     failed_steps > 0
--   recovering  a retry is pending: a step waiting_for_retry, or enqueued/in_progress on an
--               attempt > 1 (attempt numbers count every attempt of the step's life, so the
--               run an operator's RetryStep/RetryTask started counts as a retry)
--   unknown     the inconsistent case above (execution_status by the last rule)
--   healthy     otherwise
--
-- Relation to the task state settled by the engine (deriveTaskState over the counters),
-- for an active task: pending -> has_ready_steps; in_progress -> has_ready_steps |
-- processing; waiting_for_retry -> waiting_for_retry | has_ready_steps (a backoff that has
-- elapsed); blocked_by_failures -> has_ready_steps | processing | waiting_for_retry with
-- failed_steps > 0; error -> blocked_by_failures; cancelled -> cancelled; complete -> all_complete.
CREATE OR REPLACE FUNCTION task_execution_context(p_task_id uuid, p_now timestamptz DEFAULT now())
RETURNS TABLE (
  task_id                 uuid,
  task_state              text,
  total_steps             int,
  pending_steps           int,
  in_progress_steps       int,
  waiting_for_retry_steps int,
  completed_steps         int,
  failed_steps            int,
  cancelled_steps         int,
  ready_steps             int,
  execution_status        text,
  recommended_action      text,
  completion_percentage   numeric(5, 2),
  health_status           text
)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
  WITH counts AS (
    SELECT count(*)::int AS total,
           count(*) FILTER (WHERE r.state = 'pending')::int AS pending,
           count(*) FILTER (WHERE r.state IN ('enqueued', 'in_progress'))::int AS running,
           count(*) FILTER (WHERE r.state IN ('enqueued', 'in_progress') AND r.attempts > 1)::int AS running_retries,
           count(*) FILTER (WHERE r.state = 'waiting_for_retry')::int AS waiting,
           count(*) FILTER (WHERE r.state IN ('complete', 'resolved_manually'))::int AS completed,
           count(*) FILTER (WHERE r.state = 'error')::int AS failed,
           count(*) FILTER (WHERE r.state = 'cancelled')::int AS cancelled,
           count(*) FILTER (WHERE r.ready)::int AS ready
    FROM step_readiness(p_task_id, p_now) r
  ),
  status AS (
    SELECT t.id, t.state AS task_state, c.*,
           CASE
             WHEN c.completed = c.total THEN 'all_complete'
             WHEN t.state = 'cancelled' THEN 'cancelled'
             WHEN c.ready > 0 THEN 'has_ready_steps'
             WHEN c.running > 0 THEN 'processing'
             WHEN c.waiting > 0 THEN 'waiting_for_retry'
             WHEN c.failed > 0 THEN 'blocked_by_failures'
             WHEN c.cancelled > 0 THEN 'cancelled'
             ELSE 'blocked_by_failures'
           END AS execution_status,
           c.completed < c.total AND c.ready = 0 AND c.running = 0 AND c.waiting = 0
             AND c.failed = 0 AND c.cancelled = 0 AND t.state <> 'cancelled' AS inconsistent
    FROM tasks t CROSS JOIN counts c
    WHERE t.id = p_task_id
  )
  SELECT s.id, s.task_state, s.total, s.pending, s.running, s.waiting, s.completed, s.failed, s.cancelled, s.ready,
         s.execution_status,
         CASE
           WHEN s.task_state IN ('complete', 'cancelled', 'resolved_manually') THEN 'none'
           WHEN s.execution_status = 'has_ready_steps' THEN 'execute_ready_steps'
           WHEN s.execution_status = 'processing' THEN 'wait_for_completion'
           WHEN s.execution_status = 'waiting_for_retry' THEN 'wait_for_retry'
           WHEN s.execution_status = 'blocked_by_failures' THEN 'handle_failures'
           WHEN s.execution_status = 'all_complete' THEN 'finalize_task'
           ELSE 'none'
         END,
         CASE WHEN s.total = 0 THEN 100.00
              ELSE round(100.0 * s.completed / s.total, 2) END::numeric(5, 2),
         CASE
           WHEN s.failed > 0 THEN 'blocked'
           WHEN s.waiting > 0 OR s.running_retries > 0 THEN 'recovering'
           WHEN s.inconsistent THEN 'unknown'
           ELSE 'healthy'
         END
  FROM status s
$$;

COMMENT ON FUNCTION task_execution_context(uuid, timestamptz) IS
  'Progress summary of one task computed from its steps (parity check for the tasks counters); see sql/20_task_execution_context.sql.';
