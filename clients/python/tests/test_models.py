"""Attempt counting across operator retries: TaskStep (application client) and Step (what a handler receives)."""

import dataclasses

from tasker import Step
from tasker.models import Task, TaskStep
from tasker.v1 import common_pb2, task_pb2, worker_pb2


def wire_step(**fields):
    """A step as it crosses the wire: serialized and parsed, so unset fields take their defaults."""
    proto = task_pb2.Step(step_id="s1", name="charge", handler="payments.charge", **fields)
    return task_pb2.Step.FromString(proto.SerializeToString())


def test_first_allowance_counts_every_attempt():
    step = TaskStep.from_proto(wire_step(state=common_pb2.STEP_STATE_WAITING_FOR_RETRY, attempts=2, max_attempts=3))
    assert (step.state, step.attempts, step.max_attempts, step.attempt_base) == ("waiting_for_retry", 2, 3, 0)
    assert step.attempts_in_allowance == 2


def test_an_operator_retry_starts_the_allowance_at_attempt_base():
    retried = TaskStep.from_proto(
        wire_step(state=common_pb2.STEP_STATE_PENDING, attempts=3, max_attempts=3, attempt_base=3))
    assert (retried.attempts, retried.attempt_base, retried.attempts_in_allowance) == (3, 3, 0)

    running = TaskStep.from_proto(
        wire_step(state=common_pb2.STEP_STATE_IN_PROGRESS, attempts=5, max_attempts=3, attempt_base=3))
    assert running.attempts_in_allowance == 2
    assert running.attempts > running.max_attempts
    assert dataclasses.asdict(running)["attempt_base"] == 3


def test_a_task_gives_its_steps_with_attempt_base():
    task = Task.from_proto(task_pb2.Task(task_id="t1", state=common_pb2.TASK_STATE_IN_PROGRESS, steps=[
        task_pb2.Step(name="charge", attempts=4, max_attempts=2, attempt_base=3),
        task_pb2.Step(name="notify", max_attempts=2),
    ]))
    counts = [(s.name, s.attempt_base, s.attempts_in_allowance) for s in task.steps]
    assert counts == [("charge", 3, 1), ("notify", 0, 0)]


def test_a_step_built_without_attempt_base_counts_from_zero():
    step = TaskStep("s1", "charge", "h", "pending", 2, 3, None, None, [], None, None, None, None, None)
    assert (step.attempt_base, step.attempts_in_allowance) == (0, 2)


def test_is_last_attempt_after_an_operator_retry_uses_the_assigned_max_attempts():
    # Retried after attempt 3 under a policy of 3 attempts: the server sends max_attempts 6.
    def assigned(attempt):
        return Step.from_assignment(worker_pb2.StepAssignment(step_id="s1", attempt=attempt, max_attempts=6))

    assert not assigned(4).is_last_attempt
    assert assigned(6).is_last_attempt
