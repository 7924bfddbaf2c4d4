-- Attempt numbers are monotonic for a step's whole life (src/engine/task-repairs.ts,
-- src/engine/failures.ts). An operator retry (RetryStep, RetryTask) used to reset
-- `attempts` to 0, so the next attempt was numbered 1 again and one (step_id, attempt)
-- could name two attempts: a failure of the new attempt 1 matched the old last_error and
-- was acknowledged as a duplicate, and its progress reports collided with the old ones.
-- Now a retry leaves `attempts` alone and records where the fresh allowance starts:
-- the retry policy counts `attempts - attempt_base` against max_attempts.
ALTER TABLE workflow_steps ADD COLUMN attempt_base int NOT NULL DEFAULT 0;
ALTER TABLE workflow_steps ADD CONSTRAINT workflow_steps_attempt_base_check CHECK (attempt_base >= 0 AND attempt_base <= attempts);

COMMENT ON COLUMN workflow_steps.attempts IS 'Attempts dispatched over the step''s whole life (incremented by each claim, never reset): the number of the current or last attempt. Reports name (step_id, attempt); only attempt = attempts is current, and a number never names two attempts.';
COMMENT ON COLUMN workflow_steps.attempt_base IS 'Attempts made before the current retry allowance: 0 until an operator retries the step, which sets it to attempts. The retry policy counts attempts - attempt_base.';
-- The failure document now also keeps the worker's StepError.details_json, as `details`.
COMMENT ON COLUMN workflow_steps.last_error IS 'The last failure: {error_class, message, backtrace, retryable, retry_after_ms, code, details (the worker''s JSON object or null), attempt, origin (worker|lease_expired|timeout)}.';
COMMENT ON COLUMN workflow_steps.max_attempts IS 'retry.max_attempts of the template step: attempts per allowance; a failure at attempts - attempt_base >= max_attempts is permanent.';

-- Steps retried under the old rule, and not held by a worker now, are renumbered so that
-- their next attempt gets a number no attempt has had: `attempts` becomes the highest
-- attempt number in the step's audit trail, and `attempt_base` keeps the attempts of the
-- current allowance counted. A step leased at this moment keeps its numbering (its worker
-- reports the number it holds), so until it passes the highest old number its attempts
-- may still share numbers with attempts made before its retry.
WITH retried AS (
  SELECT t.step_id, max(t.attempt) AS highest
  FROM workflow_step_transitions t
  WHERE t.step_id IN (SELECT step_id FROM workflow_step_transitions WHERE event = 'manual_retry')
  GROUP BY t.step_id
)
UPDATE workflow_steps s
SET attempt_base = r.highest - s.attempts,
    attempts = r.highest
FROM retried r
WHERE s.id = r.step_id
  AND r.highest > s.attempts
  AND s.state NOT IN ('enqueued', 'in_progress');

-- step_readiness() gains an attempt_base column; CREATE OR REPLACE cannot change the
-- result columns, so the old function goes here and sql/10_step_readiness.sql, re-applied
-- after the migrations, creates the new one (task_execution_context() calls it by name).
DROP FUNCTION IF EXISTS step_readiness(uuid, timestamptz);
