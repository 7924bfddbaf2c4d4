"""The application client: create, inspect, repair and watch tasks.

Example::

    from tasker import TaskerClient, NotFoundError

    with TaskerClient("localhost:50051", token="...") as client:
        created = client.create_task("payments", "process_refund", {"amount": 5})
        for update in client.watch_task(created.task.task_id):
            print(update.kind, update.to_state or update.result)

Every method raises a :class:`tasker.TaskerError` subclass when the server
refuses the call (``NotFoundError`` with ``code == "TASK_NOT_FOUND"``...).
JSON travels as plain dicts; results come back as :mod:`tasker.models` dataclasses.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Callable, Dict, Generic, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, TypeVar

import grpc

from tasker import _convert
from tasker._channel import auth_metadata, make_channel
from tasker._templates import TemplateInput, template_from, template_to_dict
from tasker.errors import Violation, from_rpc_error
from tasker.models import (
    CancelledTask,
    CreatedTask,
    Event,
    RegisteredTemplate,
    Task,
    TaskPage,
    TaskStep,
    TaskUpdate,
    Transition,
    WorkerSession,
)
from tasker.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    common_pb2,
    task_pb2,
    task_pb2_grpc,
    template_pb2,
    template_pb2_grpc,
)

__all__ = ["TaskerClient", "Subscription"]

T = TypeVar("T")


class Subscription(Generic[T]):
    """A server stream (WatchTask, SubscribeEvents) as an iterator.

    Iterate it to receive items; :meth:`cancel` (or leaving a ``with`` block) ends
    it, after which iteration stops quietly. Server errors are raised as
    :class:`tasker.TaskerError` subclasses.
    """

    def __init__(self, call: Any, convert: Callable[[Any], T]) -> None:
        self._call = call
        self._convert = convert
        self._cancelled = False

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        try:
            message = next(self._call)
        except grpc.RpcError as exc:
            if self._cancelled and exc.code() == grpc.StatusCode.CANCELLED:
                raise StopIteration from None
            raise from_rpc_error(exc) from None
        return self._convert(message)

    def cancel(self) -> None:
        """Ends the stream; a blocked iteration returns."""
        self._cancelled = True
        self._call.cancel()

    def __enter__(self) -> "Subscription[T]":
        return self

    def __exit__(self, *_: Any) -> None:
        self.cancel()


def _task_state_value(state: str) -> str:
    """``"in_progress"`` -> ``"TASK_STATE_IN_PROGRESS"``; ValueError for unknown names."""
    name = "TASK_STATE_" + state.upper()
    common_pb2.TaskState.Value(name)
    return name


class TaskerClient:
    """Client of TaskService, TemplateService and AdminService.

    :param address: ``host:port`` of the Tasker server.
    :param token: bearer token (``client`` role; ``admin`` for the admin views).
    :param credentials: TLS credentials (``grpc.ssl_channel_credentials(...)``); None = plaintext.
    :param timeout: per-call deadline in seconds for unary calls (None = none).
    :param channel_options: extra gRPC channel options.
    """

    def __init__(
        self,
        address: str,
        token: Optional[str] = None,
        credentials: Optional[grpc.ChannelCredentials] = None,
        *,
        timeout: Optional[float] = 30.0,
        channel_options: Optional[Sequence[Tuple[str, Any]]] = None,
    ) -> None:
        self._channel = make_channel(address, credentials, channel_options)
        self._metadata = auth_metadata(token)
        self._timeout = timeout
        self._tasks = task_pb2_grpc.TaskServiceStub(self._channel)
        self._templates = template_pb2_grpc.TemplateServiceStub(self._channel)
        self._admin = admin_pb2_grpc.AdminServiceStub(self._channel)

    def close(self) -> None:
        """Closes the channel; open subscriptions end."""
        self._channel.close()

    def __enter__(self) -> "TaskerClient":
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()

    def _unary(self, method: Any, request: Any) -> Any:
        try:
            return method(request, metadata=self._metadata, timeout=self._timeout)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None

    # -- tasks -----------------------------------------------------------------------

    def create_task(
        self,
        namespace: str,
        name: str,
        context: Optional[Mapping[str, Any]] = None,
        *,
        version: str = "",
        priority: int = 0,
        tags: Iterable[str] = (),
        initiator: str = "",
        source_system: str = "",
        reason: str = "",
        correlation_id: str = "",
        idempotency_key: str = "",
    ) -> CreatedTask:
        """Creates a task from ``namespace/name`` (latest version unless ``version``)."""
        request = task_pb2.CreateTaskRequest(
            template=common_pb2.TemplateRef(namespace=namespace, name=name, version=version),
            context=_convert.dict_to_struct(context),
            priority=priority,
            tags=list(tags),
            initiator=initiator,
            source_system=source_system,
            reason=reason,
            correlation_id=correlation_id,
            idempotency_key=idempotency_key,
        )
        response = self._unary(self._tasks.CreateTask, request)
        return CreatedTask(task=Task.from_proto(response.task), created=response.created)

    def get_task(self, task_id: str, *, omit_results: bool = False) -> Task:
        """One task with its steps, edges, results and execution context."""
        request = task_pb2.GetTaskRequest(task_id=task_id, omit_results=omit_results)
        return Task.from_proto(self._unary(self._tasks.GetTask, request).task)

    def list_tasks(
        self,
        *,
        namespace: str = "",
        name: str = "",
        states: Iterable[str] = (),
        tag: str = "",
        created_after: Optional[_dt.datetime] = None,
        created_before: Optional[_dt.datetime] = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> TaskPage:
        """One page of tasks, newest first; ``states`` are names such as ``"error"``."""
        request = task_pb2.ListTasksRequest(
            namespace=namespace,
            name=name,
            states=[_task_state_value(s) for s in states],
            tag=tag,
            page_size=page_size,
            page_token=page_token,
        )
        if created_after is not None:
            request.created_after.CopyFrom(_convert.datetime_to_timestamp(created_after))
        if created_before is not None:
            request.created_before.CopyFrom(_convert.datetime_to_timestamp(created_before))
        response = self._unary(self._tasks.ListTasks, request)
        return TaskPage([Task.from_proto(t) for t in response.tasks], response.next_page_token)

    def iter_tasks(self, **filters: Any) -> Iterator[Task]:
        """Every task matching the :meth:`list_tasks` filters, fetching pages as needed."""
        token = ""
        while True:
            page = self.list_tasks(page_token=token, **filters)
            yield from page.tasks
            if not page.next_page_token:
                return
            token = page.next_page_token

    def cancel_task(self, task_id: str, reason: str = "") -> CancelledTask:
        """Cancels a task; workers holding its steps are told to stop."""
        request = task_pb2.CancelTaskRequest(task_id=task_id, reason=reason)
        response = self._unary(self._tasks.CancelTask, request)
        return CancelledTask(Task.from_proto(response.task), list(response.cancelled_step_ids))

    def retry_task(self, task_id: str, reason: str = "") -> Task:
        """Retries every step of the task that is in ``error``, each with a fresh allowance of attempts."""
        request = task_pb2.RetryTaskRequest(task_id=task_id, reason=reason)
        return Task.from_proto(self._unary(self._tasks.RetryTask, request).task)

    def retry_step(self, step_id: str, reason: str = "") -> TaskStep:
        """Runs a step in ``error`` again, with a fresh allowance of attempts.

        Attempt numbers are not reset: the returned step's ``attempt_base`` equals its
        ``attempts``, and its ``attempts_in_allowance`` starts again at 0.
        """
        request = task_pb2.RetryStepRequest(step_id=step_id, reason=reason)
        return TaskStep.from_proto(self._unary(self._tasks.RetryStep, request).step)

    def resolve_step(self, step_id: str, reason: str = "") -> TaskStep:
        """Marks a step resolved_manually (no result) so its children may run."""
        request = task_pb2.ResolveStepRequest(step_id=step_id, reason=reason)
        return TaskStep.from_proto(self._unary(self._tasks.ResolveStep, request).step)

    def complete_step(self, step_id: str, result: Any = None, reason: str = "") -> TaskStep:
        """Completes a step with an operator-supplied result (any JSON value)."""
        request = task_pb2.CompleteStepRequest(
            step_id=step_id, result=_convert.python_to_value(result), reason=reason
        )
        return TaskStep.from_proto(self._unary(self._tasks.CompleteStep, request).step)

    def watch_task(self, task_id: str, *, skip_history: bool = False) -> Subscription[TaskUpdate]:
        """Every update of one task (history first unless ``skip_history``), ending when it does."""
        request = task_pb2.WatchTaskRequest(task_id=task_id, skip_history=skip_history)
        call = self._tasks.WatchTask(request, metadata=self._metadata)
        return Subscription(call, TaskUpdate.from_proto)

    def subscribe_events(
        self,
        *,
        namespace: str = "",
        task_name: str = "",
        task_id: str = "",
        event_types: Iterable[str] = (),
        after_cursor: Optional[int] = None,
    ) -> Subscription[Event]:
        """Lifecycle events matching the filters, live; resume with ``after_cursor``."""
        request = task_pb2.SubscribeEventsRequest(
            namespace=namespace, task_name=task_name, task_id=task_id, event_types=list(event_types)
        )
        if after_cursor is not None:
            request.after_cursor = after_cursor
        call = self._tasks.SubscribeEvents(request, metadata=self._metadata)
        return Subscription(call, Event.from_proto)

    # -- templates ---------------------------------------------------------------------

    def register_template(self, template: TemplateInput) -> RegisteredTemplate:
        """Stores a template version (a TaskTemplate or its dict form)."""
        request = template_pb2.RegisterTemplateRequest(template=template_from(template))
        response = self._unary(self._templates.RegisterTemplate, request)
        return RegisteredTemplate(template_to_dict(response.template), response.created)

    def get_template(self, namespace: str, name: str, version: str = "") -> Dict[str, Any]:
        """One stored template version (latest unless ``version``) as a dict."""
        ref = common_pb2.TemplateRef(namespace=namespace, name=name, version=version)
        response = self._unary(self._templates.GetTemplate, template_pb2.GetTemplateRequest(template=ref))
        return template_to_dict(response.template)

    def list_templates(
        self, *, namespace: str = "", name: str = "", all_versions: bool = False
    ) -> List[Dict[str, Any]]:
        """Stored templates as dicts."""
        request = template_pb2.ListTemplatesRequest(namespace=namespace, name=name, all_versions=all_versions)
        response = self._unary(self._templates.ListTemplates, request)
        return [template_to_dict(t) for t in response.templates]

    def validate_template(self, template: TemplateInput) -> List[Violation]:
        """Checks a template without storing it; returns its problems (empty = valid)."""
        request = template_pb2.ValidateTemplateRequest(template=template_from(template))
        response = self._unary(self._templates.ValidateTemplate, request)
        return [Violation(v.path, v.message) for v in response.violations]

    # -- admin -------------------------------------------------------------------------

    def list_workers(
        self, *, namespace: str = "", handler: str = "", include_expired: bool = False
    ) -> List[WorkerSession]:
        """Worker sessions, newest first (requires the ``admin`` role)."""
        request = admin_pb2.ListWorkersRequest(
            namespace=namespace, handler=handler, include_expired=include_expired
        )
        response = self._unary(self._admin.ListWorkers, request)
        return [WorkerSession.from_proto(s) for s in response.sessions]

    def get_system_health(self) -> Dict[str, Any]:
        """Task and step counts per state, ready steps and active sessions (``admin``)."""
        response = self._unary(self._admin.GetSystemHealth, admin_pb2.GetSystemHealthRequest())
        h = response.health
        return {
            "task_counts": dict(h.task_counts),
            "step_counts": dict(h.step_counts),
            "ready_steps": h.ready_steps,
            "active_sessions": h.active_sessions,
            "at": _convert.timestamp_to_datetime(h, "at"),
        }

    def get_step_audit(self, step_id: str) -> List[Transition]:
        """Every recorded transition of one step, oldest first (``admin``)."""
        response = self._unary(self._admin.GetStepAudit, admin_pb2.GetStepAuditRequest(step_id=step_id))
        return [Transition.from_proto(t) for t in response.transitions]
