from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from tasker.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

BACKOFF_EXPONENTIAL: Backoff
BACKOFF_FIXED: Backoff
BACKOFF_LINEAR: Backoff
BACKOFF_UNSPECIFIED: Backoff
DESCRIPTOR: _descriptor.FileDescriptor
IDENTITY_STRATEGY_ALWAYS_UNIQUE: IdentityStrategy
IDENTITY_STRATEGY_CALLER_PROVIDED: IdentityStrategy
IDENTITY_STRATEGY_STRICT: IdentityStrategy
IDENTITY_STRATEGY_UNSPECIFIED: IdentityStrategy

class EnvironmentOverride(_message.Message):
    __slots__ = ["steps"]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[StepOverride]
    def __init__(self, steps: _Optional[_Iterable[_Union[StepOverride, _Mapping]]] = ...) -> None: ...

class GetTemplateRequest(_message.Message):
    __slots__ = ["template"]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    template: _common_pb2.TemplateRef
    def __init__(self, template: _Optional[_Union[_common_pb2.TemplateRef, _Mapping]] = ...) -> None: ...

class GetTemplateResponse(_message.Message):
    __slots__ = ["template"]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    template: TaskTemplate
    def __init__(self, template: _Optional[_Union[TaskTemplate, _Mapping]] = ...) -> None: ...

class ListTemplatesRequest(_message.Message):
    __slots__ = ["all_versions", "name", "namespace"]
    ALL_VERSIONS_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    all_versions: bool
    name: str
    namespace: str
    def __init__(self, namespace: _Optional[str] = ..., name: _Optional[str] = ..., all_versions: bool = ...) -> None: ...

class ListTemplatesResponse(_message.Message):
    __slots__ = ["templates"]
    TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    templates: _containers.RepeatedCompositeFieldContainer[TaskTemplate]
    def __init__(self, templates: _Optional[_Iterable[_Union[TaskTemplate, _Mapping]]] = ...) -> None: ...

class RegisterTemplateRequest(_message.Message):
    __slots__ = ["template"]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    template: TaskTemplate
    def __init__(self, template: _Optional[_Union[TaskTemplate, _Mapping]] = ...) -> None: ...

class RegisterTemplateResponse(_message.Message):
    __slots__ = ["created", "template"]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    created: bool
    template: TaskTemplate
    def __init__(self, template: _Optional[_Union[TaskTemplate, _Mapping]] = ..., created: bool = ...) -> None: ...

class RetryPolicy(_message.Message):
    __slots__ = ["backoff", "base_ms", "jitter", "max_attempts", "max_ms"]
    BACKOFF_FIELD_NUMBER: _ClassVar[int]
    BASE_MS_FIELD_NUMBER: _ClassVar[int]
    JITTER_FIELD_NUMBER: _ClassVar[int]
    MAX_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    MAX_MS_FIELD_NUMBER: _ClassVar[int]
    backoff: Backoff
    base_ms: int
    jitter: float
    max_attempts: int
    max_ms: int
    def __init__(self, max_attempts: _Optional[int] = ..., backoff: _Optional[_Union[Backoff, str]] = ..., base_ms: _Optional[int] = ..., max_ms: _Optional[int] = ..., jitter: _Optional[float] = ...) -> None: ...

class StepOverride(_message.Message):
    __slots__ = ["handler", "handler_config", "name", "retry", "timeout_ms"]
    HANDLER_CONFIG_FIELD_NUMBER: _ClassVar[int]
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    handler: str
    handler_config: _struct_pb2.Struct
    name: str
    retry: RetryPolicy
    timeout_ms: int
    def __init__(self, name: _Optional[str] = ..., handler_config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., retry: _Optional[_Union[RetryPolicy, _Mapping]] = ..., timeout_ms: _Optional[int] = ..., handler: _Optional[str] = ...) -> None: ...

class StepTemplate(_message.Message):
    __slots__ = ["depends_on", "handler", "handler_config", "name", "retry", "timeout_ms"]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    HANDLER_CONFIG_FIELD_NUMBER: _ClassVar[int]
    HANDLER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    RETRY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    depends_on: _containers.RepeatedScalarFieldContainer[str]
    handler: str
    handler_config: _struct_pb2.Struct
    name: str
    retry: RetryPolicy
    timeout_ms: int
    def __init__(self, name: _Optional[str] = ..., handler: _Optional[str] = ..., depends_on: _Optional[_Iterable[str]] = ..., handler_config: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., retry: _Optional[_Union[RetryPolicy, _Mapping]] = ..., timeout_ms: _Optional[int] = ...) -> None: ...

class TaskTemplate(_message.Message):
    __slots__ = ["body_hash", "context_schema", "created_at", "description", "environments", "identity_strategy", "name", "namespace", "steps", "version"]
    class EnvironmentsEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: EnvironmentOverride
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[EnvironmentOverride, _Mapping]] = ...) -> None: ...
    BODY_HASH_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENTS_FIELD_NUMBER: _ClassVar[int]
    IDENTITY_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    body_hash: str
    context_schema: _struct_pb2.Struct
    created_at: _timestamp_pb2.Timestamp
    description: str
    environments: _containers.MessageMap[str, EnvironmentOverride]
    identity_strategy: IdentityStrategy
    name: str
    namespace: str
    steps: _containers.RepeatedCompositeFieldContainer[StepTemplate]
    version: str
    def __init__(self, namespace: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., description: _Optional[str] = ..., context_schema: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., identity_strategy: _Optional[_Union[IdentityStrategy, str]] = ..., steps: _Optional[_Iterable[_Union[StepTemplate, _Mapping]]] = ..., environments: _Optional[_Mapping[str, EnvironmentOverride]] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., body_hash: _Optional[str] = ...) -> None: ...

class ValidateTemplateRequest(_message.Message):
    __slots__ = ["template"]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    template: TaskTemplate
    def __init__(self, template: _Optional[_Union[TaskTemplate, _Mapping]] = ...) -> None: ...

class ValidateTemplateResponse(_message.Message):
    __slots__ = ["valid", "violations"]
    VALID_FIELD_NUMBER: _ClassVar[int]
    VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    violations: _containers.RepeatedCompositeFieldContainer[_common_pb2.Violation]
    def __init__(self, valid: bool = ..., violations: _Optional[_Iterable[_Union[_common_pb2.Violation, _Mapping]]] = ...) -> None: ...

class IdentityStrategy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class Backoff(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
