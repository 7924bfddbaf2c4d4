# frozen_string_literal: true

require_relative 'test_helper'

# Attempt counting across operator retries: TaskStep (application client) and
# Step (what a handler receives).
class TaskStepTest < Minitest::Test
  def wire_step(**fields)
    proto = Tasker::V1::Step.new(step_id: 'st-1', name: 'charge', handler: 'payments.charge', **fields)
    Tasker::V1::Step.decode(Tasker::V1::Step.encode(proto))
  end

  def test_first_allowance_counts_every_attempt
    step = Tasker::TaskStep.from_proto(wire_step(state: :STEP_STATE_WAITING_FOR_RETRY, attempts: 2, max_attempts: 3))
    assert_equal [:waiting_for_retry, 2, 3, 0], [step.state, step.attempts, step.max_attempts, step.attempt_base]
    assert_equal 2, step.attempts_in_allowance
  end

  def test_an_operator_retry_starts_the_allowance_at_attempt_base
    retried = Tasker::TaskStep.from_proto(wire_step(state: :STEP_STATE_PENDING, attempts: 3, max_attempts: 3,
                                                    attempt_base: 3))
    assert_equal [3, 3, 0], [retried.attempts, retried.attempt_base, retried.attempts_in_allowance]

    running = Tasker::TaskStep.from_proto(wire_step(state: :STEP_STATE_IN_PROGRESS, attempts: 5, max_attempts: 3,
                                                    attempt_base: 3))
    assert_equal 2, running.attempts_in_allowance
    assert_operator running.attempts, :>, running.max_attempts
    assert_includes running.to_h.keys, :attempt_base
  end

  def test_a_task_gives_its_steps_with_attempt_base
    task = Tasker::V1::Task.new(task_id: 't-1', state: :TASK_STATE_IN_PROGRESS, steps: [
                                  Tasker::V1::Step.new(name: 'charge', attempts: 4, max_attempts: 2, attempt_base: 3),
                                  Tasker::V1::Step.new(name: 'notify', max_attempts: 2)
                                ])
    counts = Tasker::Task.from_proto(task).steps.map { |s| [s.name, s.attempt_base, s.attempts_in_allowance] }
    assert_equal [['charge', 3, 1], ['notify', 0, 0]], counts
  end

  def test_a_step_built_without_attempt_base_counts_from_zero
    step = Tasker::TaskStep.new(step_id: 'st-1', name: 'charge', attempts: 2, max_attempts: 3)
    assert_equal 2, step.attempts_in_allowance
  end

  # The server sends max_attempts as attempt_base + the policy's max_attempts, so
  # last_attempt? needs nothing more after an operator retry.
  def test_last_attempt_after_an_operator_retry_uses_the_assigned_max_attempts
    refute Tasker::Step.from_assignment(assignment('s1', attempt: 4, max_attempts: 6)).last_attempt?
    assert Tasker::Step.from_assignment(assignment('s1', attempt: 6, max_attempts: 6)).last_attempt?
  end
end
