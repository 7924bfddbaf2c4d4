"""Conversions between plain Python values and the wire's JSON carriers.

The application API carries JSON as google.protobuf.Struct / Value; the worker hot
path carries UTF-8 JSON text in ``bytes`` fields. Users only ever see dicts, lists,
str, int, float, bool and None. Struct numbers are doubles on the wire; whole
numbers come back as ``int`` so ``{"amount": 5}`` round-trips unchanged.
"""

from __future__ import annotations

import datetime as _dt
import json
from typing import Any, Dict, Mapping, Optional

from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.protobuf.message import Message

_MAX_SAFE_INT = 2**53


def dumps(value: Any) -> bytes:
    """Encodes a JSON value as compact UTF-8 bytes; raises TypeError/ValueError if it is not JSON."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )


def loads(data: bytes, default: Any = None) -> Any:
    """Decodes UTF-8 JSON bytes; empty bytes give ``default``."""
    if not data:
        return default
    return json.loads(data.decode("utf-8"))


def loads_object(data: bytes) -> Dict[str, Any]:
    """Decodes UTF-8 JSON bytes expected to hold an object; empty or non-object gives {}."""
    value = loads(data, {})
    return value if isinstance(value, dict) else {}


def _normalize_number(value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and abs(value) <= _MAX_SAFE_INT:
        return int(value)
    if isinstance(value, dict):
        return {k: _normalize_number(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize_number(v) for v in value]
    return value


def struct_to_dict(struct: Optional[struct_pb2.Struct]) -> Dict[str, Any]:
    """google.protobuf.Struct -> dict (an unset Struct gives {})."""
    if struct is None:
        return {}
    return _normalize_number(json_format.MessageToDict(struct))  # type: ignore[no-any-return]


def value_to_python(value: Optional[struct_pb2.Value]) -> Any:
    """google.protobuf.Value -> Python value (unset gives None)."""
    if value is None or value.WhichOneof("kind") is None:
        return None
    return _normalize_number(json_format.MessageToDict(value))


def dict_to_struct(value: Optional[Mapping[str, Any]]) -> struct_pb2.Struct:
    """dict -> google.protobuf.Struct; raises TypeError for non-JSON values."""
    struct = struct_pb2.Struct()
    if value:
        json_format.ParseDict(_jsonable(value), struct)
    return struct


def python_to_value(value: Any) -> struct_pb2.Value:
    """Any JSON value -> google.protobuf.Value."""
    out = struct_pb2.Value()
    json_format.ParseDict(_jsonable(value), out)
    return out


def _jsonable(value: Any) -> Any:
    # Round-trip through the json module: rejects non-JSON values with a clear
    # TypeError and turns tuples into lists, as json.dumps would.
    return json.loads(json.dumps(value, allow_nan=False))


def timestamp_to_datetime(message: Message, field: str) -> Optional[_dt.datetime]:
    """A Timestamp field of ``message`` as an aware UTC datetime, or None when unset."""
    if not message.HasField(field):
        return None
    ts: timestamp_pb2.Timestamp = getattr(message, field)
    out: _dt.datetime = ts.ToDatetime(tzinfo=_dt.timezone.utc)
    return out


def datetime_to_timestamp(value: _dt.datetime) -> timestamp_pb2.Timestamp:
    """A datetime (naive = UTC) as a Timestamp."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=_dt.timezone.utc)
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(value.astimezone(_dt.timezone.utc))
    return ts


def now_timestamp() -> timestamp_pb2.Timestamp:
    """The current time as a Timestamp."""
    ts = timestamp_pb2.Timestamp()
    ts.GetCurrentTime()
    return ts


def message_to_dict(message: Message) -> Dict[str, Any]:
    """Any message -> dict with proto field names (snake_case) and enum names."""
    return _normalize_number(  # type: ignore[no-any-return]
        json_format.MessageToDict(message, preserving_proto_field_name=True)
    )
