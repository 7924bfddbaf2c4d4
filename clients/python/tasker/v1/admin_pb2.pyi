from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
SESSION_STATE_ACTIVE: SessionState
SESSION_STATE_DRAINING: SessionState
SESSION_STATE_EXPIRED: SessionState
SESSION_STATE_UNSPECIFIED: SessionState

class GetAnalyticsRequest(_message.Message):
    __slots__ = ["limit", "since"]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    limit: int
    since: _timestamp_pb2.Timestamp
    def __init__(self, since: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., limit: _Optional[int] = ...) -> None: ...

class GetAnalyticsResponse(_message.Message):
    __slots__ = ["slowest_steps", "slowest_tasks", "steps_per_minute", "tasks_per_minute"]
    SLOWEST_STEPS_FIELD_NUMBER: _ClassVar[int]
    SLOWEST_TASKS_FIELD_NUMBER: _ClassVar[int]
    STEPS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    TASKS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    slowest_steps: _containers.RepeatedCompositeFieldContainer[SlowStep]
    slowest_tasks: _containers.RepeatedCompositeFieldContainer[SlowTask]
    steps_per_minute: float
    tasks_per_minute: float
    def __init__(self, tasks_per_minute: _Optional[float] = ..., steps_per_minute: _Optional[float] = ..., slowest_steps: _Optional[_Iterable[_Union[SlowStep, _Mapping]]] = ..., slowest_tasks: _Optional[_Iterable[_Union[SlowTask, _Mapping]]] = ...) -> None: ...

class GetStepAuditRequest(_message.Message):
    __slots__ = ["step_id"]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    step_id: str
    def __init__(self, step_id: _Optional[str] = ...) -> None: ...

class GetStepAuditResponse(_message.Message):
    __slots__ = ["transitions"]
    TRANSITIONS_FIELD_NUMBER: _ClassVar[int]
    transitions: _containers.RepeatedCompositeFieldContainer[Transition]
    def __init__(self, transitions: _Optional[_Iterable[_Union[Transition, _Mapping]]] = ...) -> None: ...

class GetSystemHealthRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class GetSystemHealthResponse(_message.Message):
    __slots__ = ["health"]
    HEALTH_FIELD_NUMBER: _ClassVar[int]
    health: SystemHealth
    def __init__(self, health: _Optional[_Union[SystemHealth, _Mapping]] = ...) -> None: ...

class ListWorkersRequest(_message.Message):
    __slots__ = ["handler", "include_expired", "namespace"]
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_EXPIRED_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    handler: str
    include_expired: bool
    namespace: str
    def __init__(self, namespace: _Optional[str] = ..., handler: _Optional[str] = ..., include_expired: bool = ...) -> None: ...

class ListWorkersResponse(_message.Message):
    __slots__ = ["sessions"]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    sessions: _containers.RepeatedCompositeFieldContainer[WorkerSession]
    def __init__(self, sessions: _Optional[_Iterable[_Union[WorkerSession, _Mapping]]] = ...) -> None: ...

class SlowStep(_message.Message):
    __slots__ = ["duration_ms", "handler", "step_id", "step_name", "task_id"]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_NAME_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    duration_ms: int
    handler: str
    step_id: str
    step_name: str
    task_id: str
    def __init__(self, task_id: _Optional[str] = ..., step_id: _Optional[str] = ..., step_name: _Optional[str] = ..., handler: _Optional[str] = ..., duration_ms: _Optional[int] = ...) -> None: ...

class SlowTask(_message.Message):
    __slots__ = ["duration_ms", "name", "namespace", "task_id"]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    duration_ms: int
    name: str
    namespace: str
    task_id: str
    def __init__(self, task_id: _Optional[str] = ..., namespace: _Optional[str] = ..., name: _Optional[str] = ..., duration_ms: _Optional[int] = ...) -> None: ...

class SystemHealth(_message.Message):
    __slots__ = ["active_sessions", "at", "ready_steps", "step_counts", "task_counts"]
    class StepCountsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class TaskCountsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    ACTIVE_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    READY_STEPS_FIELD_NUMBER: _ClassVar[int]
    STEP_COUNTS_FIELD_NUMBER: _ClassVar[int]
    TASK_COUNTS_FIELD_NUMBER: _ClassVar[int]
    active_sessions: int
    at: _timestamp_pb2.Timestamp
    ready_steps: int
    step_counts: _containers.ScalarMap[str, int]
    task_counts: _containers.ScalarMap[str, int]
    def __init__(self, task_counts: _Optional[_Mapping[str, int]] = ..., step_counts: _Optional[_Mapping[str, int]] = ..., ready_steps: _Optional[int] = ..., active_sessions: _Optional[int] = ..., at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Transition(_message.Message):
    __slots__ = ["at", "attempt", "from_state", "metadata", "reason", "to_state"]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    FROM_STATE_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TO_STATE_FIELD_NUMBER: _ClassVar[int]
    at: _timestamp_pb2.Timestamp
    attempt: int
    from_state: str
    metadata: _struct_pb2.Struct
    reason: str
    to_state: str
    def __init__(self, from_state: _Optional[str] = ..., to_state: _Optional[str] = ..., attempt: _Optional[int] = ..., reason: _Optional[str] = ..., metadata: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WorkerSession(_message.Message):
    __slots__ = ["connected", "created_at", "expires_at", "handlers", "in_flight", "labels", "language", "last_heartbeat_at", "max_in_flight", "namespaces", "sdk_version", "server_instance", "session_id", "state", "worker_name"]
    class LabelsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    HANDLERS_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    LAST_HEARTBEAT_AT_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    NAMESPACES_FIELD_NUMBER: _ClassVar[int]
    SDK_VERSION_FIELD_NUMBER: _ClassVar[int]
    SERVER_INSTANCE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    WORKER_NAME_FIELD_NUMBER: _ClassVar[int]
    connected: bool
    created_at: _timestamp_pb2.Timestamp
    expires_at: _timestamp_pb2.Timestamp
    handlers: _containers.RepeatedScalarFieldContainer[str]
    in_flight: int
    labels: _containers.ScalarMap[str, str]
    language: str
    last_heartbeat_at: _timestamp_pb2.Timestamp
    max_in_flight: int
    namespaces: _containers.RepeatedScalarFieldContainer[str]
    sdk_version: str
    server_instance: str
    session_id: str
    state: SessionState
    worker_name: str
    def __init__(self, session_id: _Optional[str] = ..., worker_name: _Optional[str] = ..., language: _Optional[str] = ..., sdk_version: _Optional[str] = ..., handlers: _Optional[_Iterable[str]] = ..., namespaces: _Optional[_Iterable[str]] = ..., labels: _Optional[_Mapping[str, str]] = ..., max_in_flight: _Optional[int] = ..., in_flight: _Optional[int] = ..., state: _Optional[_Union[SessionState, str]] = ..., server_instance: _Optional[str] = ..., connected: bool = ..., last_heartbeat_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., expires_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SessionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
