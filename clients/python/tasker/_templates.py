"""Task templates given as dicts (the YAML/JSON form) or as TaskTemplate messages."""

from __future__ import annotations

from typing import Any, Dict, Mapping, Union

from google.protobuf import json_format

from tasker.v1 import template_pb2

TemplateInput = Union[template_pb2.TaskTemplate, Mapping[str, Any]]

_ENUM_PREFIX = {"identity_strategy": "IDENTITY_STRATEGY_", "backoff": "BACKOFF_"}


def _upper_enum(key: str, value: Any) -> Any:
    prefix = _ENUM_PREFIX.get(key)
    if prefix and isinstance(value, str) and not value.upper().startswith(prefix):
        return prefix + value.upper()
    return value


def _normalize(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _normalize(_upper_enum(k, v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_normalize(v) for v in value]
    return value


def template_from(template: TemplateInput) -> template_pb2.TaskTemplate:
    """Builds a TaskTemplate from a message or a dict.

    Dicts use the proto field names (``depends_on``, ``handler_config``,
    ``retry: {max_attempts, backoff, base_ms}``...); enum values may be written
    short and lowercase (``identity_strategy: strict``, ``backoff: linear``).
    Raises ValueError (json_format.ParseError) for unknown fields or bad values.
    """
    if isinstance(template, template_pb2.TaskTemplate):
        return template
    message = template_pb2.TaskTemplate()
    json_format.ParseDict(_normalize(dict(template)), message)
    return message


def template_to_dict(template: template_pb2.TaskTemplate) -> Dict[str, Any]:
    """TaskTemplate -> dict with proto field names and enum names."""
    out: Dict[str, Any] = json_format.MessageToDict(template, preserving_proto_field_name=True)
    return out
