from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from tasker.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CancelTaskRequest(_message.Message):
    __slots__ = ["reason", "task_id"]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    reason: str
    task_id: str
    def __init__(self, task_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelTaskResponse(_message.Message):
    __slots__ = ["cancelled_step_ids", "task"]
    CANCELLED_STEP_IDS_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    cancelled_step_ids: _containers.RepeatedScalarFieldContainer[str]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ..., cancelled_step_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class CompleteStepRequest(_message.Message):
    __slots__ = ["reason", "result", "step_id"]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    reason: str
    result: _struct_pb2.Value
    step_id: str
    def __init__(self, step_id: _Optional[str] = ..., result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class CompleteStepResponse(_message.Message):
    __slots__ = ["step"]
    STEP_FIELD_NUMBER: _ClassVar[int]
    step: Step
    def __init__(self, step: _Optional[_Union[Step, _Mapping]] = ...) -> None: ...

class CreateTaskRequest(_message.Message):
    __slots__ = ["context", "correlation_id", "idempotency_key", "initiator", "priority", "reason", "source_system", "tags", "template"]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    INITIATOR_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SYSTEM_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    context: _struct_pb2.Struct
    correlation_id: str
    idempotency_key: str
    initiator: str
    priority: int
    reason: str
    source_system: str
    tags: _containers.RepeatedScalarFieldContainer[str]
    template: _common_pb2.TemplateRef
    def __init__(self, template: _Optional[_Union[_common_pb2.TemplateRef, _Mapping]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., priority: _Optional[int] = ..., tags: _Optional[_Iterable[str]] = ..., initiator: _Optional[str] = ..., source_system: _Optional[str] = ..., reason: _Optional[str] = ..., correlation_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class CreateTaskResponse(_message.Message):
    __slots__ = ["created", "task"]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    created: bool
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ..., created: bool = ...) -> None: ...

class Edge(_message.Message):
    __slots__ = ["from_step", "to_step"]
    FROM_STEP_FIELD_NUMBER: _ClassVar[int]
    TO_STEP_FIELD_NUMBER: _ClassVar[int]
    from_step: str
    to_step: str
    def __init__(self, from_step: _Optional[str] = ..., to_step: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ["at", "cursor", "event_type", "namespace", "payload", "step_id", "step_name", "task_id", "task_name"]
    AT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_NAME_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_NAME_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    cursor: int
    event_type: str
    namespace: str
    payload: _struct_pb2.Struct
    step_id: str
    step_name: str
    task_id: str
    task_name: str
    def __init__(self, cursor: _Optional[int] = ..., event_type: _Optional[str] = ..., namespace: _Optional[str] = ..., task_name: _Optional[str] = ..., task_id: _Optional[str] = ..., step_id: _Optional[str] = ..., step_name: _Optional[str] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ExecutionContext(_message.Message):
    __slots__ = ["cancelled_steps", "completed_steps", "completion_percentage", "execution_status", "failed_steps", "health_status", "in_progress_steps", "pending_steps", "ready_steps", "recommended_action", "total_steps", "waiting_for_retry_steps"]
    CANCELLED_STEPS_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_STEPS_FIELD_NUMBER: _ClassVar[int]
    COMPLETION_PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_STATUS_FIELD_NUMBER: _ClassVar[int]
    FAILED_STEPS_FIELD_NUMBER: _ClassVar[int]
    HEALTH_STATUS_FIELD_NUMBER: _ClassVar[int]
    IN_PROGRESS_STEPS_FIELD_NUMBER: _ClassVar[int]
    PENDING_STEPS_FIELD_NUMBER: _ClassVar[int]
    READY_STEPS_FIELD_NUMBER: _ClassVar[int]
    RECOMMENDED_ACTION_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    WAITING_FOR_RETRY_STEPS_FIELD_NUMBER: _ClassVar[int]
    cancelled_steps: int
    completed_steps: int
    completion_percentage: float
    execution_status: str
    failed_steps: int
    health_status: str
    in_progress_steps: int
    pending_steps: int
    ready_steps: int
    recommended_action: str
    total_steps: int
    waiting_for_retry_steps: int
    def __init__(self, total_steps: _Optional[int] = ..., pending_steps: _Optional[int] = ..., in_progress_steps: _Optional[int] = ..., completed_steps: _Optional[int] = ..., failed_steps: _Optional[int] = ..., ready_steps: _Optional[int] = ..., execution_status: _Optional[str] = ..., recommended_action: _Optional[str] = ..., completion_percentage: _Optional[float] = ..., health_status: _Optional[str] = ..., waiting_for_retry_steps: _Optional[int] = ..., cancelled_steps: _Optional[int] = ...) -> None: ...

class GetTaskRequest(_message.Message):
    __slots__ = ["omit_results", "task_id"]
    OMIT_RESULTS_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    omit_results: bool
    task_id: str
    def __init__(self, task_id: _Optional[str] = ..., omit_results: bool = ...) -> None: ...

class GetTaskResponse(_message.Message):
    __slots__ = ["task"]
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class ListTasksRequest(_message.Message):
    __slots__ = ["created_after", "created_before", "name", "namespace", "page_size", "page_token", "states", "tag"]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    TAG_FIELD_NUMBER: _ClassVar[int]
    created_after: _timestamp_pb2.Timestamp
    created_before: _timestamp_pb2.Timestamp
    name: str
    namespace: str
    page_size: int
    page_token: str
    states: _containers.RepeatedScalarFieldContainer[_common_pb2.TaskState]
    tag: str
    def __init__(self, namespace: _Optional[str] = ..., name: _Optional[str] = ..., states: _Optional[_Iterable[_Union[_common_pb2.TaskState, str]]] = ..., tag: _Optional[str] = ..., created_after: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., created_before: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListTasksResponse(_message.Message):
    __slots__ = ["next_page_token", "tasks"]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TASKS_FIELD_NUMBER: _ClassVar[int]
    next_page_token: str
    tasks: _containers.RepeatedCompositeFieldContainer[Task]
    def __init__(self, tasks: _Optional[_Iterable[_Union[Task, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ResolveStepRequest(_message.Message):
    __slots__ = ["reason", "step_id"]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    reason: str
    step_id: str
    def __init__(self, step_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ResolveStepResponse(_message.Message):
    __slots__ = ["step"]
    STEP_FIELD_NUMBER: _ClassVar[int]
    step: Step
    def __init__(self, step: _Optional[_Union[Step, _Mapping]] = ...) -> None: ...

class RetryStepRequest(_message.Message):
    __slots__ = ["reason", "step_id"]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    reason: str
    step_id: str
    def __init__(self, step_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RetryStepResponse(_message.Message):
    __slots__ = ["step"]
    STEP_FIELD_NUMBER: _ClassVar[int]
    step: Step
    def __init__(self, step: _Optional[_Union[Step, _Mapping]] = ...) -> None: ...

class RetryTaskRequest(_message.Message):
    __slots__ = ["reason", "task_id"]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    reason: str
    task_id: str
    def __init__(self, task_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RetryTaskResponse(_message.Message):
    __slots__ = ["task"]
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: Task
    def __init__(self, task: _Optional[_Union[Task, _Mapping]] = ...) -> None: ...

class Step(_message.Message):
    __slots__ = ["attempt_base", "attempts", "completed_at", "created_at", "depends_on", "handler", "last_error", "max_attempts", "name", "next_attempt_at", "result", "started_at", "state", "step_id", "updated_at"]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_BASE_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    LAST_ERROR_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    NEXT_ATTEMPT_AT_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    attempt_base: int
    attempts: int
    completed_at: _timestamp_pb2.Timestamp
    created_at: _timestamp_pb2.Timestamp
    depends_on: _containers.RepeatedScalarFieldContainer[str]
    handler: str
    last_error: _common_pb2.StepError
    max_attempts: int
    name: str
    next_attempt_at: _timestamp_pb2.Timestamp
    result: _struct_pb2.Value
    started_at: _timestamp_pb2.Timestamp
    state: _common_pb2.StepState
    step_id: str
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, step_id: _Optional[str] = ..., name: _Optional[str] = ..., handler: _Optional[str] = ..., state: _Optional[_Union[_common_pb2.StepState, str]] = ..., attempts: _Optional[int] = ..., max_attempts: _Optional[int] = ..., result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., last_error: _Optional[_Union[_common_pb2.StepError, _Mapping]] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., next_attempt_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., depends_on: _Optional[_Iterable[str]] = ..., attempt_base: _Optional[int] = ...) -> None: ...

class StepProgressUpdate(_message.Message):
    __slots__ = ["attempt", "payload", "seq", "step_id", "step_name"]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_NAME_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    payload: _struct_pb2.Value
    seq: int
    step_id: str
    step_name: str
    def __init__(self, step_id: _Optional[str] = ..., step_name: _Optional[str] = ..., attempt: _Optional[int] = ..., seq: _Optional[int] = ..., payload: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class StepResult(_message.Message):
    __slots__ = ["attempt", "result", "step_id", "step_name"]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_NAME_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    result: _struct_pb2.Value
    step_id: str
    step_name: str
    def __init__(self, step_id: _Optional[str] = ..., step_name: _Optional[str] = ..., attempt: _Optional[int] = ..., result: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class StepStateChanged(_message.Message):
    __slots__ = ["attempt", "from_state", "reason", "step_id", "step_name", "to_state"]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    FROM_STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_NAME_FIELD_NUMBER: _ClassVar[int]
    TO_STATE_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    from_state: _common_pb2.StepState
    reason: str
    step_id: str
    step_name: str
    to_state: _common_pb2.StepState
    def __init__(self, step_id: _Optional[str] = ..., step_name: _Optional[str] = ..., from_state: _Optional[_Union[_common_pb2.StepState, str]] = ..., to_state: _Optional[_Union[_common_pb2.StepState, str]] = ..., attempt: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class SubscribeEventsRequest(_message.Message):
    __slots__ = ["after_cursor", "event_types", "namespace", "task_id", "task_name"]
    AFTER_CURSOR_FIELD_NUMBER: _ClassVar[int]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TASK_NAME_FIELD_NUMBER: _ClassVar[int]
    after_cursor: int
    event_types: _containers.RepeatedScalarFieldContainer[str]
    namespace: str
    task_id: str
    task_name: str
    def __init__(self, namespace: _Optional[str] = ..., task_name: _Optional[str] = ..., task_id: _Optional[str] = ..., event_types: _Optional[_Iterable[str]] = ..., after_cursor: _Optional[int] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ["completed_at", "context", "correlation_id", "created_at", "edges", "execution_context", "initiator", "priority", "reason", "source_system", "state", "steps", "tags", "task_id", "template", "updated_at"]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    EXECUTION_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    INITIATOR_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    SOURCE_SYSTEM_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    completed_at: _timestamp_pb2.Timestamp
    context: _struct_pb2.Struct
    correlation_id: str
    created_at: _timestamp_pb2.Timestamp
    edges: _containers.RepeatedCompositeFieldContainer[Edge]
    execution_context: ExecutionContext
    initiator: str
    priority: int
    reason: str
    source_system: str
    state: _common_pb2.TaskState
    steps: _containers.RepeatedCompositeFieldContainer[Step]
    tags: _containers.RepeatedScalarFieldContainer[str]
    task_id: str
    template: _common_pb2.TemplateRef
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, task_id: _Optional[str] = ..., template: _Optional[_Union[_common_pb2.TemplateRef, _Mapping]] = ..., state: _Optional[_Union[_common_pb2.TaskState, str]] = ..., context: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., priority: _Optional[int] = ..., tags: _Optional[_Iterable[str]] = ..., initiator: _Optional[str] = ..., source_system: _Optional[str] = ..., reason: _Optional[str] = ..., correlation_id: _Optional[str] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., steps: _Optional[_Iterable[_Union[Step, _Mapping]]] = ..., edges: _Optional[_Iterable[_Union[Edge, _Mapping]]] = ..., execution_context: _Optional[_Union[ExecutionContext, _Mapping]] = ...) -> None: ...

class TaskStateChanged(_message.Message):
    __slots__ = ["from_state", "reason", "to_state"]
    FROM_STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TO_STATE_FIELD_NUMBER: _ClassVar[int]
    from_state: _common_pb2.TaskState
    reason: str
    to_state: _common_pb2.TaskState
    def __init__(self, from_state: _Optional[_Union[_common_pb2.TaskState, str]] = ..., to_state: _Optional[_Union[_common_pb2.TaskState, str]] = ..., reason: _Optional[str] = ...) -> None: ...

class TaskUpdate(_message.Message):
    __slots__ = ["at", "cursor", "step_progress", "step_result", "step_state_changed", "task_state_changed"]
    AT_FIELD_NUMBER: _ClassVar[int]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    STEP_PROGRESS_FIELD_NUMBER: _ClassVar[int]
    STEP_RESULT_FIELD_NUMBER: _ClassVar[int]
    STEP_STATE_CHANGED_FIELD_NUMBER: _ClassVar[int]
    TASK_STATE_CHANGED_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    cursor: int
    step_progress: StepProgressUpdate
    step_result: StepResult
    step_state_changed: StepStateChanged
    task_state_changed: TaskStateChanged
    def __init__(self, cursor: _Optional[int] = ..., at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., task_state_changed: _Optional[_Union[TaskStateChanged, _Mapping]] = ..., step_state_changed: _Optional[_Union[StepStateChanged, _Mapping]] = ..., step_progress: _Optional[_Union[StepProgressUpdate, _Mapping]] = ..., step_result: _Optional[_Union[StepResult, _Mapping]] = ...) -> None: ...

class WatchTaskRequest(_message.Message):
    __slots__ = ["skip_history", "task_id"]
    SKIP_HISTORY_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    skip_history: bool
    task_id: str
    def __init__(self, task_id: _Optional[str] = ..., skip_history: bool = ...) -> None: ...
