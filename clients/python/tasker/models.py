"""What :class:`tasker.TaskerClient` returns: plain dataclasses with dicts for JSON.

States are the lowercase domain names (``pending``, ``in_progress``,
``complete``...), instants are aware UTC datetimes (None when unset), JSON values
are dicts/lists/scalars.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from tasker import _convert
from tasker.v1 import admin_pb2, common_pb2, task_pb2

__all__ = [
    "TemplateRef",
    "ErrorInfo",
    "TaskStep",
    "ExecutionContext",
    "Task",
    "CreatedTask",
    "TaskPage",
    "CancelledTask",
    "TaskUpdate",
    "Event",
    "WorkerSession",
    "Transition",
    "RegisteredTemplate",
    "state_name",
]

_ts = _convert.timestamp_to_datetime


def state_name(enum_name: str) -> str:
    """``TASK_STATE_IN_PROGRESS`` -> ``in_progress`` (``unspecified`` for 0)."""
    for prefix in ("TASK_STATE_", "STEP_STATE_", "SESSION_STATE_"):
        if enum_name.startswith(prefix):
            return enum_name[len(prefix):].lower()
    return enum_name.lower()


def _task_state(value: int) -> str:
    return state_name(common_pb2.TaskState.Name(value))


def _step_state(value: int) -> str:
    return state_name(common_pb2.StepState.Name(value))


@dataclass(frozen=True)
class TemplateRef:
    """One version of a template."""

    namespace: str
    name: str
    version: str = ""


@dataclass(frozen=True)
class ErrorInfo:
    """Why a step attempt failed."""

    error_class: str
    message: str
    backtrace: List[str]
    retryable: bool
    retry_after_ms: Optional[int]
    code: str
    details: Optional[Dict[str, Any]]

    @classmethod
    def from_proto(cls, e: common_pb2.StepError) -> "ErrorInfo":
        return cls(
            error_class=e.error_class,
            message=e.message,
            backtrace=list(e.backtrace),
            retryable=e.retryable,
            retry_after_ms=e.retry_after_ms if e.HasField("retry_after_ms") else None,
            code=e.code,
            details=_convert.loads(e.details_json, None),
        )


@dataclass(frozen=True)
class TaskStep:
    """One step of a task."""

    step_id: str
    name: str
    handler: str
    state: str
    #: Attempts dispatched so far: the number of the current or last attempt. Never
    #: reset, so after an operator retry it keeps counting up and may exceed
    #: ``max_attempts``.
    attempts: int
    #: Attempts allowed per retry allowance by the step's retry policy.
    max_attempts: int
    result: Any
    last_error: Optional[ErrorInfo]
    depends_on: List[str]
    created_at: Optional[_dt.datetime]
    updated_at: Optional[_dt.datetime]
    started_at: Optional[_dt.datetime]
    completed_at: Optional[_dt.datetime]
    next_attempt_at: Optional[_dt.datetime]
    #: Attempts made before the current retry allowance: 0 until an operator retries
    #: the step (``retry_step``, ``retry_task``), which sets it to ``attempts``.
    attempt_base: int = 0

    @property
    def attempts_in_allowance(self) -> int:
        """Attempts used in the current retry allowance (``attempts - attempt_base``).

        This is what the retry policy counts against ``max_attempts``: the step is
        retried while it is below.
        """
        return self.attempts - self.attempt_base

    @classmethod
    def from_proto(cls, s: task_pb2.Step) -> "TaskStep":
        return cls(
            step_id=s.step_id,
            name=s.name,
            handler=s.handler,
            state=_step_state(s.state),
            attempts=s.attempts,
            max_attempts=s.max_attempts,
            result=_convert.value_to_python(s.result) if s.HasField("result") else None,
            last_error=ErrorInfo.from_proto(s.last_error) if s.HasField("last_error") else None,
            depends_on=list(s.depends_on),
            created_at=_ts(s, "created_at"),
            updated_at=_ts(s, "updated_at"),
            started_at=_ts(s, "started_at"),
            completed_at=_ts(s, "completed_at"),
            next_attempt_at=_ts(s, "next_attempt_at"),
            attempt_base=s.attempt_base,
        )


@dataclass(frozen=True)
class ExecutionContext:
    """Progress summary of a task."""

    total_steps: int
    pending_steps: int
    in_progress_steps: int
    completed_steps: int
    failed_steps: int
    ready_steps: int
    execution_status: str
    recommended_action: str
    completion_percentage: float
    health_status: str

    @classmethod
    def from_proto(cls, c: task_pb2.ExecutionContext) -> "ExecutionContext":
        return cls(
            total_steps=c.total_steps,
            pending_steps=c.pending_steps,
            in_progress_steps=c.in_progress_steps,
            completed_steps=c.completed_steps,
            failed_steps=c.failed_steps,
            ready_steps=c.ready_steps,
            execution_status=c.execution_status,
            recommended_action=c.recommended_action,
            completion_percentage=c.completion_percentage,
            health_status=c.health_status,
        )


@dataclass(frozen=True)
class Task:
    """One run of a template, with its steps and DAG edges (empty in list results)."""

    task_id: str
    template: TemplateRef
    state: str
    context: Dict[str, Any]
    priority: int
    tags: List[str]
    initiator: str
    source_system: str
    reason: str
    correlation_id: str
    created_at: Optional[_dt.datetime]
    updated_at: Optional[_dt.datetime]
    completed_at: Optional[_dt.datetime]
    steps: List[TaskStep] = field(default_factory=list)
    #: (from_step, to_step) name pairs.
    edges: List[Tuple[str, str]] = field(default_factory=list)
    execution_context: Optional[ExecutionContext] = None

    def step(self, name: str) -> TaskStep:
        """The step called ``name``; KeyError if the task has none."""
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def results(self) -> Dict[str, Any]:
        """Results of the complete steps, keyed by step name."""
        return {s.name: s.result for s in self.steps if s.state == "complete"}

    @classmethod
    def from_proto(cls, t: task_pb2.Task) -> "Task":
        return cls(
            task_id=t.task_id,
            template=TemplateRef(t.template.namespace, t.template.name, t.template.version),
            state=_task_state(t.state),
            context=_convert.struct_to_dict(t.context),
            priority=t.priority,
            tags=list(t.tags),
            initiator=t.initiator,
            source_system=t.source_system,
            reason=t.reason,
            correlation_id=t.correlation_id,
            created_at=_ts(t, "created_at"),
            updated_at=_ts(t, "updated_at"),
            completed_at=_ts(t, "completed_at"),
            steps=[TaskStep.from_proto(s) for s in t.steps],
            edges=[(e.from_step, e.to_step) for e in t.edges],
            execution_context=ExecutionContext.from_proto(t.execution_context)
            if t.HasField("execution_context")
            else None,
        )


@dataclass(frozen=True)
class CreatedTask:
    """CreateTask's answer: ``created`` is False when an identical task already existed."""

    task: Task
    created: bool


@dataclass(frozen=True)
class TaskPage:
    """One page of ListTasks; ``next_page_token`` is empty on the last page."""

    tasks: List[Task]
    next_page_token: str


@dataclass(frozen=True)
class CancelledTask:
    """CancelTask's answer."""

    task: Task
    cancelled_step_ids: List[str]


@dataclass(frozen=True)
class TaskUpdate:
    """One thing that happened to a watched task.

    ``kind`` is ``task_state_changed``, ``step_state_changed``, ``step_progress``
    or ``step_result``; the fields that do not apply to it are None.
    """

    kind: str
    cursor: int
    at: Optional[_dt.datetime]
    from_state: Optional[str] = None
    to_state: Optional[str] = None
    reason: Optional[str] = None
    step_id: Optional[str] = None
    step_name: Optional[str] = None
    attempt: Optional[int] = None
    seq: Optional[int] = None
    payload: Any = None
    result: Any = None

    @classmethod
    def from_proto(cls, u: task_pb2.TaskUpdate) -> "TaskUpdate":
        kind = u.WhichOneof("update") or "unknown"
        base: Dict[str, Any] = {"kind": kind, "cursor": u.cursor, "at": _ts(u, "at")}
        if kind == "task_state_changed":
            c = u.task_state_changed
            base.update(from_state=_task_state(c.from_state), to_state=_task_state(c.to_state), reason=c.reason)
        elif kind == "step_state_changed":
            s = u.step_state_changed
            base.update(
                step_id=s.step_id,
                step_name=s.step_name,
                from_state=_step_state(s.from_state),
                to_state=_step_state(s.to_state),
                attempt=s.attempt,
                reason=s.reason,
            )
        elif kind == "step_progress":
            p = u.step_progress
            base.update(
                step_id=p.step_id,
                step_name=p.step_name,
                attempt=p.attempt,
                seq=p.seq,
                payload=_convert.value_to_python(p.payload),
            )
        elif kind == "step_result":
            r = u.step_result
            base.update(
                step_id=r.step_id,
                step_name=r.step_name,
                attempt=r.attempt,
                result=_convert.value_to_python(r.result),
            )
        return cls(**base)


@dataclass(frozen=True)
class Event:
    """One lifecycle event (``task.completed``, ``step.failed``...)."""

    cursor: int
    event_type: str
    namespace: str
    task_name: str
    task_id: str
    step_id: str
    step_name: str
    payload: Dict[str, Any]
    at: Optional[_dt.datetime]

    @classmethod
    def from_proto(cls, e: task_pb2.Event) -> "Event":
        return cls(
            cursor=e.cursor,
            event_type=e.event_type,
            namespace=e.namespace,
            task_name=e.task_name,
            task_id=e.task_id,
            step_id=e.step_id,
            step_name=e.step_name,
            payload=_convert.struct_to_dict(e.payload),
            at=_ts(e, "at"),
        )


@dataclass(frozen=True)
class WorkerSession:
    """One worker session as the server sees it (ListWorkers)."""

    session_id: str
    worker_name: str
    language: str
    sdk_version: str
    handlers: List[str]
    namespaces: List[str]
    labels: Dict[str, str]
    max_in_flight: int
    in_flight: int
    state: str
    server_instance: str
    connected: bool
    last_heartbeat_at: Optional[_dt.datetime]
    expires_at: Optional[_dt.datetime]
    created_at: Optional[_dt.datetime]

    @classmethod
    def from_proto(cls, w: admin_pb2.WorkerSession) -> "WorkerSession":
        return cls(
            session_id=w.session_id,
            worker_name=w.worker_name,
            language=w.language,
            sdk_version=w.sdk_version,
            handlers=list(w.handlers),
            namespaces=list(w.namespaces),
            labels=dict(w.labels),
            max_in_flight=w.max_in_flight,
            in_flight=w.in_flight,
            state=state_name(admin_pb2.SessionState.Name(w.state)),
            server_instance=w.server_instance,
            connected=w.connected,
            last_heartbeat_at=_ts(w, "last_heartbeat_at"),
            expires_at=_ts(w, "expires_at"),
            created_at=_ts(w, "created_at"),
        )


@dataclass(frozen=True)
class Transition:
    """One recorded state transition of a step (GetStepAudit)."""

    from_state: str
    to_state: str
    attempt: int
    reason: str
    metadata: Dict[str, Any]
    at: Optional[_dt.datetime]

    @classmethod
    def from_proto(cls, t: admin_pb2.Transition) -> "Transition":
        return cls(
            from_state=t.from_state,
            to_state=t.to_state,
            attempt=t.attempt,
            reason=t.reason,
            metadata=_convert.struct_to_dict(t.metadata),
            at=_ts(t, "at"),
        )


@dataclass(frozen=True)
class RegisteredTemplate:
    """A stored template version; ``created`` is False when the identical body already existed."""

    template: Dict[str, Any]
    created: bool

    @property
    def ref(self) -> TemplateRef:
        """namespace/name@version of the stored template."""
        t = self.template
        return TemplateRef(t.get("namespace", ""), t.get("name", ""), t.get("version", ""))
