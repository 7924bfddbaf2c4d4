from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor
STEP_STATE_CANCELLED: StepState
STEP_STATE_COMPLETE: StepState
STEP_STATE_ENQUEUED: StepState
STEP_STATE_ERROR: StepState
STEP_STATE_IN_PROGRESS: StepState
STEP_STATE_PENDING: StepState
STEP_STATE_RESOLVED_MANUALLY: StepState
STEP_STATE_UNSPECIFIED: StepState
STEP_STATE_WAITING_FOR_RETRY: StepState
TASK_STATE_BLOCKED_BY_FAILURES: TaskState
TASK_STATE_CANCELLED: TaskState
TASK_STATE_COMPLETE: TaskState
TASK_STATE_ERROR: TaskState
TASK_STATE_IN_PROGRESS: TaskState
TASK_STATE_PENDING: TaskState
TASK_STATE_RESOLVED_MANUALLY: TaskState
TASK_STATE_UNSPECIFIED: TaskState
TASK_STATE_WAITING_FOR_RETRY: TaskState

class StepError(_message.Message):
    __slots__ = ["backtrace", "code", "details_json", "error_class", "message", "retry_after_ms", "retryable"]
    BACKTRACE_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_CLASS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    RETRYABLE_FIELD_NUMBER: _ClassVar[int]
    RETRY_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    backtrace: _containers.RepeatedScalarFieldContainer[str]
    code: str
    details_json: bytes
    error_class: str
    message: str
    retry_after_ms: int
    retryable: bool
    def __init__(self, error_class: _Optional[str] = ..., message: _Optional[str] = ..., backtrace: _Optional[_Iterable[str]] = ..., retryable: bool = ..., retry_after_ms: _Optional[int] = ..., code: _Optional[str] = ..., details_json: _Optional[bytes] = ...) -> None: ...

class StepRef(_message.Message):
    __slots__ = ["attempt", "step_id"]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    step_id: str
    def __init__(self, step_id: _Optional[str] = ..., attempt: _Optional[int] = ...) -> None: ...

class TemplateRef(_message.Message):
    __slots__ = ["name", "namespace", "version"]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    namespace: str
    version: str
    def __init__(self, namespace: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class Violation(_message.Message):
    __slots__ = ["message", "path"]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    message: str
    path: str
    def __init__(self, path: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class TaskState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class StepState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
