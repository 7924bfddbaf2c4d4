from google.protobuf import timestamp_pb2 as _timestamp_pb2
from tasker.v1 import common_pb2 as _common_pb2
from tasker.v1 import template_pb2 as _template_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

ACK_STATUS_ACCEPTED: AckStatus
ACK_STATUS_DUPLICATE: AckStatus
ACK_STATUS_REJECTED: AckStatus
ACK_STATUS_UNSPECIFIED: AckStatus
DESCRIPTOR: _descriptor.FileDescriptor
REJECT_REASON_INVALID_PAYLOAD: RejectReason
REJECT_REASON_NOT_LEASED_TO_SESSION: RejectReason
REJECT_REASON_PAYLOAD_TOO_LARGE: RejectReason
REJECT_REASON_STALE_ATTEMPT: RejectReason
REJECT_REASON_STEP_NOT_RUNNING: RejectReason
REJECT_REASON_TASK_CANCELLED: RejectReason
REJECT_REASON_UNKNOWN_STEP: RejectReason
REJECT_REASON_UNSPECIFIED: RejectReason

class AckBatch(_message.Message):
    __slots__ = ["acks"]
    ACKS_FIELD_NUMBER: _ClassVar[int]
    acks: _containers.RepeatedCompositeFieldContainer[ResultAck]
    def __init__(self, acks: _Optional[_Iterable[_Union[ResultAck, _Mapping]]] = ...) -> None: ...

class BatchCompleted(_message.Message):
    __slots__ = ["batch_id", "completed", "failed"]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    completed: int
    failed: int
    def __init__(self, batch_id: _Optional[str] = ..., completed: _Optional[int] = ..., failed: _Optional[int] = ...) -> None: ...

class Cancel(_message.Message):
    __slots__ = ["reason", "steps"]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    reason: str
    steps: _containers.RepeatedCompositeFieldContainer[_common_pb2.StepRef]
    def __init__(self, steps: _Optional[_Iterable[_Union[_common_pb2.StepRef, _Mapping]]] = ..., reason: _Optional[str] = ...) -> None: ...

class Credit(_message.Message):
    __slots__ = ["slots"]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    slots: int
    def __init__(self, slots: _Optional[int] = ...) -> None: ...

class Drain(_message.Message):
    __slots__ = ["grace_ms", "reason"]
    GRACE_MS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    grace_ms: int
    reason: str
    def __init__(self, reason: _Optional[str] = ..., grace_ms: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ["sent_at"]
    SENT_AT_FIELD_NUMBER: _ClassVar[int]
    sent_at: _timestamp_pb2.Timestamp
    def __init__(self, sent_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ["handlers", "labels", "language", "max_in_flight", "namespaces", "resume_handle", "sdk_version", "templates", "worker_name"]
    class LabelsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    HANDLERS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    NAMESPACES_FIELD_NUMBER: _ClassVar[int]
    RESUME_HANDLE_FIELD_NUMBER: _ClassVar[int]
    SDK_VERSION_FIELD_NUMBER: _ClassVar[int]
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    WORKER_NAME_FIELD_NUMBER: _ClassVar[int]
    handlers: _containers.RepeatedScalarFieldContainer[str]
    labels: _containers.ScalarMap[str, str]
    language: str
    max_in_flight: int
    namespaces: _containers.RepeatedScalarFieldContainer[str]
    resume_handle: str
    sdk_version: str
    templates: _containers.RepeatedCompositeFieldContainer[_template_pb2.TaskTemplate]
    worker_name: str
    def __init__(self, worker_name: _Optional[str] = ..., language: _Optional[str] = ..., sdk_version: _Optional[str] = ..., handlers: _Optional[_Iterable[str]] = ..., namespaces: _Optional[_Iterable[str]] = ..., max_in_flight: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., resume_handle: _Optional[str] = ..., templates: _Optional[_Iterable[_Union[_template_pb2.TaskTemplate, _Mapping]]] = ...) -> None: ...

class ReportBatch(_message.Message):
    __slots__ = ["batches", "reports"]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    batches: _containers.RepeatedCompositeFieldContainer[BatchCompleted]
    reports: _containers.RepeatedCompositeFieldContainer[StepReport]
    def __init__(self, reports: _Optional[_Iterable[_Union[StepReport, _Mapping]]] = ..., batches: _Optional[_Iterable[_Union[BatchCompleted, _Mapping]]] = ...) -> None: ...

class ResultAck(_message.Message):
    __slots__ = ["attempt", "message", "reason", "report_id", "status", "step_id"]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    message: str
    reason: RejectReason
    report_id: int
    status: AckStatus
    step_id: str
    def __init__(self, report_id: _Optional[int] = ..., step_id: _Optional[str] = ..., attempt: _Optional[int] = ..., status: _Optional[_Union[AckStatus, str]] = ..., reason: _Optional[_Union[RejectReason, str]] = ..., message: _Optional[str] = ...) -> None: ...

class ServerMessage(_message.Message):
    __slots__ = ["acks", "batch", "cancel", "drain", "welcome"]
    ACKS_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    DRAIN_FIELD_NUMBER: _ClassVar[int]
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    acks: AckBatch
    batch: StepBatch
    cancel: Cancel
    drain: Drain
    welcome: Welcome
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., batch: _Optional[_Union[StepBatch, _Mapping]] = ..., acks: _Optional[_Union[AckBatch, _Mapping]] = ..., cancel: _Optional[_Union[Cancel, _Mapping]] = ..., drain: _Optional[_Union[Drain, _Mapping]] = ...) -> None: ...

class StepAssignment(_message.Message):
    __slots__ = ["ancestor_results_json", "attempt", "context_json", "correlation_id", "deadline", "handler", "handler_config_json", "max_attempts", "step_id", "step_name", "task_id", "template", "timeout_ms"]
    ANCESTOR_RESULTS_JSON_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_JSON_FIELD_NUMBER: _ClassVar[int]
    CORRELATION_ID_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    HANDLER_CONFIG_JSON_FIELD_NUMBER: _ClassVar[int]
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    STEP_NAME_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    ancestor_results_json: bytes
    attempt: int
    context_json: bytes
    correlation_id: str
    deadline: _timestamp_pb2.Timestamp
    handler: str
    handler_config_json: bytes
    max_attempts: int
    step_id: str
    step_name: str
    task_id: str
    template: _common_pb2.TemplateRef
    timeout_ms: int
    def __init__(self, step_id: _Optional[str] = ..., attempt: _Optional[int] = ..., task_id: _Optional[str] = ..., template: _Optional[_Union[_common_pb2.TemplateRef, _Mapping]] = ..., step_name: _Optional[str] = ..., handler: _Optional[str] = ..., handler_config_json: _Optional[bytes] = ..., context_json: _Optional[bytes] = ..., ancestor_results_json: _Optional[bytes] = ..., deadline: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., correlation_id: _Optional[str] = ..., max_attempts: _Optional[int] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class StepBatch(_message.Message):
    __slots__ = ["batch_id", "steps"]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    steps: _containers.RepeatedCompositeFieldContainer[StepAssignment]
    def __init__(self, batch_id: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[StepAssignment, _Mapping]]] = ...) -> None: ...

class StepCompleted(_message.Message):
    __slots__ = ["result_json"]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    result_json: bytes
    def __init__(self, result_json: _Optional[bytes] = ...) -> None: ...

class StepFailed(_message.Message):
    __slots__ = ["error"]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    error: _common_pb2.StepError
    def __init__(self, error: _Optional[_Union[_common_pb2.StepError, _Mapping]] = ...) -> None: ...

class StepProgress(_message.Message):
    __slots__ = ["payload_json", "seq"]
    PAYLOAD_JSON_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    payload_json: bytes
    seq: int
    def __init__(self, seq: _Optional[int] = ..., payload_json: _Optional[bytes] = ...) -> None: ...

class StepReport(_message.Message):
    __slots__ = ["attempt", "completed", "failed", "progress", "report_id", "started", "step_id"]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    REPORT_ID_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    STEP_ID_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    completed: StepCompleted
    failed: StepFailed
    progress: StepProgress
    report_id: int
    started: StepStarted
    step_id: str
    def __init__(self, report_id: _Optional[int] = ..., step_id: _Optional[str] = ..., attempt: _Optional[int] = ..., started: _Optional[_Union[StepStarted, _Mapping]] = ..., progress: _Optional[_Union[StepProgress, _Mapping]] = ..., completed: _Optional[_Union[StepCompleted, _Mapping]] = ..., failed: _Optional[_Union[StepFailed, _Mapping]] = ...) -> None: ...

class StepStarted(_message.Message):
    __slots__ = ["started_at"]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    started_at: _timestamp_pb2.Timestamp
    def __init__(self, started_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ["heartbeat_interval_ms", "in_flight", "lease_ms", "max_report_bytes", "resumed", "server_instance", "session_expires_at", "session_handle", "session_id"]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    LEASE_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_REPORT_BYTES_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FIELD_NUMBER: _ClassVar[int]
    SERVER_INSTANCE_FIELD_NUMBER: _ClassVar[int]
    SESSION_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    SESSION_HANDLE_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    heartbeat_interval_ms: int
    in_flight: _containers.RepeatedCompositeFieldContainer[_common_pb2.StepRef]
    lease_ms: int
    max_report_bytes: int
    resumed: bool
    server_instance: str
    session_expires_at: _timestamp_pb2.Timestamp
    session_handle: str
    session_id: str
    def __init__(self, session_id: _Optional[str] = ..., session_handle: _Optional[str] = ..., heartbeat_interval_ms: _Optional[int] = ..., lease_ms: _Optional[int] = ..., session_expires_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., resumed: bool = ..., in_flight: _Optional[_Iterable[_Union[_common_pb2.StepRef, _Mapping]]] = ..., server_instance: _Optional[str] = ..., max_report_bytes: _Optional[int] = ...) -> None: ...

class WorkerMessage(_message.Message):
    __slots__ = ["credit", "drain", "heartbeat", "hello", "reports"]
    CREDIT_FIELD_NUMBER: _ClassVar[int]
    DRAIN_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    HELLO_FIELD_NUMBER: _ClassVar[int]
    REPORTS_FIELD_NUMBER: _ClassVar[int]
    credit: Credit
    drain: Drain
    heartbeat: Heartbeat
    hello: Hello
    reports: ReportBatch
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., reports: _Optional[_Union[ReportBatch, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., credit: _Optional[_Union[Credit, _Mapping]] = ..., drain: _Optional[_Union[Drain, _Mapping]] = ...) -> None: ...

class AckStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class RejectReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
