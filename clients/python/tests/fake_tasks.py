"""A small TaskService/TemplateService peer for client tests (real gRPC socket)."""

from __future__ import annotations

import json
import threading
from typing import Any, Dict, List

import grpc
from google.protobuf import struct_pb2

from tasker.v1 import common_pb2, task_pb2, task_pb2_grpc, template_pb2, template_pb2_grpc


def abort(context: grpc.ServicerContext, code: grpc.StatusCode, reason: str, details: Dict[str, Any], message: str) -> None:
    context.set_trailing_metadata(
        (("tasker-error-code", reason), ("tasker-error-details-bin", json.dumps(details).encode("utf-8")))
    )
    context.abort(code, message)


class FakeTasks(task_pb2_grpc.TaskServiceServicer):
    def __init__(self) -> None:
        self.tasks: Dict[str, task_pb2.Task] = {}
        self.requests: List[Any] = []
        self.metadata: List[Dict[str, str]] = []
        self.watch_release = threading.Event()

    def _seen(self, request: Any, context: grpc.ServicerContext) -> None:
        self.requests.append(request)
        self.metadata.append(dict(context.invocation_metadata()))

    def CreateTask(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._seen(request, context)
        if request.template.name == "missing":
            abort(context, grpc.StatusCode.NOT_FOUND, "TEMPLATE_NOT_FOUND",
                  {"kind": "template", "id": "ns/missing"}, "template ns/missing not found")
        if "amount" not in request.context.fields:
            abort(context, grpc.StatusCode.INVALID_ARGUMENT, "VALIDATION_FAILED",
                  {"violations": [{"path": "/context/amount", "message": "amount is required"}]},
                  "context is invalid")
        task_id = f"t{len(self.tasks) + 1}"
        step = task_pb2.Step(step_id=f"{task_id}-s1", name="charge", handler="h", state=common_pb2.STEP_STATE_COMPLETE,
                             attempts=1, max_attempts=3, result=struct_pb2.Value(number_value=7), depends_on=[])
        task = task_pb2.Task(task_id=task_id, template=request.template, state=common_pb2.TASK_STATE_PENDING,
                             context=request.context, tags=request.tags, steps=[step],
                             edges=[task_pb2.Edge(from_step="a", to_step="charge")])
        task.created_at.GetCurrentTime()
        self.tasks[task_id] = task
        return task_pb2.CreateTaskResponse(task=task, created=True)

    def GetTask(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._seen(request, context)
        if request.task_id not in self.tasks:
            abort(context, grpc.StatusCode.NOT_FOUND, "TASK_NOT_FOUND",
                  {"kind": "task", "id": request.task_id}, f"task {request.task_id} not found")
        return task_pb2.GetTaskResponse(task=self.tasks[request.task_id])

    def ListTasks(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._seen(request, context)
        ids = sorted(self.tasks)
        start = int(request.page_token or 0)
        size = request.page_size or 1
        page = ids[start:start + size]
        token = str(start + size) if start + size < len(ids) else ""
        return task_pb2.ListTasksResponse(tasks=[self.tasks[i] for i in page], next_page_token=token)

    def CompleteStep(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._seen(request, context)
        return task_pb2.CompleteStepResponse(
            step=task_pb2.Step(step_id=request.step_id, state=common_pb2.STEP_STATE_COMPLETE, result=request.result))

    def RetryStep(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._seen(request, context)
        return task_pb2.RetryStepResponse(step=task_pb2.Step(
            step_id=request.step_id, name="charge", state=common_pb2.STEP_STATE_PENDING,
            attempts=3, max_attempts=3, attempt_base=3))

    def WatchTask(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._seen(request, context)
        yield task_pb2.TaskUpdate(cursor=1, task_state_changed=task_pb2.TaskStateChanged(
            from_state=common_pb2.TASK_STATE_UNSPECIFIED, to_state=common_pb2.TASK_STATE_PENDING))
        yield task_pb2.TaskUpdate(cursor=2, step_progress=task_pb2.StepProgressUpdate(
            step_id="s1", step_name="charge", attempt=1, seq=1,
            payload=struct_pb2.Value(struct_value=struct_pb2.Struct(fields={"i": struct_pb2.Value(number_value=1)}))))
        yield task_pb2.TaskUpdate(cursor=3, step_result=task_pb2.StepResult(
            step_id="s1", step_name="charge", attempt=1, result=struct_pb2.Value(string_value="ok")))
        if request.task_id == "forever":
            self.watch_release.wait(10)

    def SubscribeEvents(self, request: Any, context: grpc.ServicerContext) -> Any:
        self._seen(request, context)
        if request.HasField("after_cursor") and request.after_cursor < 0:
            abort(context, grpc.StatusCode.OUT_OF_RANGE, "CURSOR_EXPIRED", {}, "cursor no longer retained")
        yield task_pb2.Event(cursor=10, event_type="task.completed", task_id="t1")


class FakeTemplates(template_pb2_grpc.TemplateServiceServicer):
    def __init__(self) -> None:
        self.registered: List[Any] = []

    def RegisterTemplate(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.registered.append(request.template)
        stored = template_pb2.TaskTemplate()
        stored.CopyFrom(request.template)
        stored.body_hash = "abc"
        return template_pb2.RegisterTemplateResponse(template=stored, created=True)
