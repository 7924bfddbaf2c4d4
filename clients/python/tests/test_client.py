"""TaskerClient against a TaskService peer on a real socket: dicts in, dataclasses out, errors mapped."""

import grpc
import pytest

from fake_server import start_server
from fake_tasks import FakeTasks, FakeTemplates
from tasker import InvalidArgumentError, NotFoundError, TaskerClient, TaskerError, Violation
from tasker.v1 import task_pb2_grpc, template_pb2, template_pb2_grpc


@pytest.fixture()
def env():
    tasks, templates = FakeTasks(), FakeTemplates()
    server, address = start_server(tasks, task_pb2_grpc.add_TaskServiceServicer_to_server)
    template_pb2_grpc.add_TemplateServiceServicer_to_server(templates, server)
    client = TaskerClient(address, token="secret-token", timeout=10)
    yield client, tasks, templates
    client.close()
    server.stop(0)


def test_create_task_sends_dict_context_and_returns_plain_values(env):
    client, tasks, _ = env
    created = client.create_task("payments", "refund", {"amount": 5, "items": [{"sku": "a"}]}, tags=["x"])
    assert created.created is True
    task = created.task
    assert task.context == {"amount": 5, "items": [{"sku": "a"}]}
    assert isinstance(task.context["amount"], int)
    assert task.state == "pending"
    assert task.template.namespace == "payments"
    assert task.tags == ["x"]
    assert task.step("charge").result == 7
    assert task.step("charge").state == "complete"
    assert task.results == {"charge": 7}
    assert task.edges == [("a", "charge")]
    assert task.created_at is not None and task.created_at.tzinfo is not None
    assert tasks.metadata[-1]["authorization"] == "Bearer secret-token"


def test_not_found_is_raised_with_reason_and_details(env):
    client, _, _ = env
    with pytest.raises(NotFoundError) as caught:
        client.get_task("nope")
    assert caught.value.code == "TASK_NOT_FOUND"
    assert caught.value.details == {"kind": "task", "id": "nope"}
    assert caught.value.grpc_code == grpc.StatusCode.NOT_FOUND


def test_validation_failure_carries_violations(env):
    client, _, _ = env
    with pytest.raises(InvalidArgumentError) as caught:
        client.create_task("payments", "refund", {})
    assert caught.value.code == "VALIDATION_FAILED"
    assert caught.value.violations == [Violation("/context/amount", "amount is required")]


def test_list_tasks_pages_and_iter_tasks_follows_tokens(env):
    client, tasks, _ = env
    for amount in range(3):
        client.create_task("payments", "refund", {"amount": amount})
    page = client.list_tasks(page_size=2, states=["pending", "in_progress"])
    assert len(page.tasks) == 2 and page.next_page_token
    assert list(tasks.requests[-1].states) == [1, 2]
    assert [t.context["amount"] for t in client.iter_tasks(page_size=1)] == [0, 1, 2]
    with pytest.raises(ValueError):
        client.list_tasks(states=["bogus"])


def test_complete_step_sends_any_json_value(env):
    client, tasks, _ = env
    step = client.complete_step("s1", {"refund": [1, 2]}, reason="manual")
    assert step.result == {"refund": [1, 2]}
    assert step.state == "complete"
    assert tasks.requests[-1].reason == "manual"


def test_retry_step_returns_the_step_with_a_fresh_allowance(env):
    client, tasks, _ = env
    step = client.retry_step("s3", reason="fixed upstream")
    assert (tasks.requests[-1].step_id, tasks.requests[-1].reason) == ("s3", "fixed upstream")
    assert (step.state, step.attempts, step.attempt_base, step.attempts_in_allowance) == ("pending", 3, 3, 0)


def test_watch_task_yields_updates_until_the_stream_ends(env):
    client, _, _ = env
    updates = list(client.watch_task("t1"))
    assert [u.kind for u in updates] == ["task_state_changed", "step_progress", "step_result"]
    assert updates[0].from_state == "unspecified" and updates[0].to_state == "pending"
    assert updates[1].payload == {"i": 1} and updates[1].seq == 1
    assert updates[2].result == "ok"


def test_cancelling_a_subscription_ends_iteration_quietly(env):
    client, tasks, _ = env
    sub = client.watch_task("forever")
    seen = [next(sub), next(sub), next(sub)]
    sub.cancel()
    assert list(sub) == []
    assert len(seen) == 3
    tasks.watch_release.set()


def test_subscribe_events_errors_are_mapped(env):
    client, tasks, _ = env
    events = list(client.subscribe_events(task_id="t1", after_cursor=0))
    assert events[0].event_type == "task.completed" and events[0].cursor == 10
    assert tasks.requests[-1].HasField("after_cursor")
    with pytest.raises(TaskerError) as caught:
        list(client.subscribe_events(after_cursor=-1))
    assert caught.value.code == "CURSOR_EXPIRED"


def test_register_template_accepts_the_dict_form_with_short_enum_names(env):
    client, _, templates = env
    result = client.register_template({
        "namespace": "payments", "name": "refund", "version": "1.0.0",
        "identity_strategy": "always_unique",
        "steps": [
            {"name": "a", "handler": "h.a", "handler_config": {"n": 1}},
            {"name": "b", "handler": "h.b", "depends_on": ["a"], "retry": {"max_attempts": 5, "backoff": "linear", "base_ms": 10}},
        ],
    })
    sent = templates.registered[-1]
    assert sent.identity_strategy == template_pb2.IDENTITY_STRATEGY_ALWAYS_UNIQUE
    assert sent.steps[1].retry.backoff == template_pb2.BACKOFF_LINEAR
    assert sent.steps[1].retry.base_ms == 10
    assert result.created is True
    assert result.ref.name == "refund"
    assert result.template["steps"][0]["handler_config"] == {"n": 1}
