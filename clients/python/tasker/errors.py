"""Tasker's exceptions.

Two families live here:

* Server errors (:class:`TaskerError` and its subclasses) are raised by
  :class:`tasker.TaskerClient` and by :meth:`tasker.Worker.run` when the server
  refuses a call. Each carries the gRPC status, the stable reason ``code`` from the
  ``tasker-error-code`` trailer (e.g. ``TASK_NOT_FOUND``) and the structured
  ``details`` from ``tasker-error-details-bin``.
* Handler errors (:class:`PermanentError`, :class:`RetryableError`,
  :class:`Cancelled`) are raised *by step handlers* to tell the worker how an
  attempt ended. Any other exception a handler raises is reported as a retryable
  failure.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Mapping, Optional, Type

import grpc

__all__ = [
    "TaskerError",
    "InvalidArgumentError",
    "NotFoundError",
    "AlreadyExistsError",
    "FailedPreconditionError",
    "UnauthenticatedError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "UnavailableError",
    "Violation",
    "PermanentError",
    "RetryableError",
    "Cancelled",
    "from_rpc_error",
    "from_status",
    "ERROR_CODE_KEY",
    "ERROR_DETAILS_KEY",
]

#: Trailing-metadata key holding the stable reason code.
ERROR_CODE_KEY = "tasker-error-code"
#: Trailing-metadata key holding UTF-8 JSON details.
ERROR_DETAILS_KEY = "tasker-error-details-bin"


class TaskerError(Exception):
    """Raised when the Tasker server refuses a call.

    ``code`` is the server's stable reason (``TASK_NOT_FOUND``, ``VALIDATION_FAILED``,
    ``SESSION_EXPIRED``...) or, when the server sent none (``INTERNAL``, transport
    failures), the gRPC status name. ``grpc_code`` is the :class:`grpc.StatusCode`
    and ``details`` the structured details (an empty dict when there are none).
    """

    def __init__(
        self,
        message: str,
        code: Optional[str] = None,
        grpc_code: grpc.StatusCode = grpc.StatusCode.UNKNOWN,
        details: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__(message)
        self.message: str = message
        self.grpc_code: grpc.StatusCode = grpc_code
        self.code: str = code or grpc_code.name
        self.details: Dict[str, Any] = dict(details or {})

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class Violation:
    """One problem found while validating input: where it is and what is wrong."""

    __slots__ = ("path", "message")

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message

    def __repr__(self) -> str:
        return f"Violation(path={self.path!r}, message={self.message!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Violation) and (self.path, self.message) == (other.path, other.message)

    def __hash__(self) -> int:
        return hash((self.path, self.message))


class InvalidArgumentError(TaskerError):
    """Raised on INVALID_ARGUMENT; ``violations`` lists each problem by path."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        raw = self.details.get("violations")
        self.violations: List[Violation] = [
            Violation(str(v.get("path", "")), str(v.get("message", "")))
            for v in (raw if isinstance(raw, list) else [])
            if isinstance(v, dict)
        ]


class NotFoundError(TaskerError):
    """Raised on NOT_FOUND (``TASK_NOT_FOUND``, ``STEP_NOT_FOUND``, ``TEMPLATE_NOT_FOUND``...)."""


class AlreadyExistsError(TaskerError):
    """Raised on ALREADY_EXISTS, e.g. a template version registered with a different body."""


class FailedPreconditionError(TaskerError):
    """Raised on FAILED_PRECONDITION: the operation is not allowed from the current state."""


class UnauthenticatedError(TaskerError):
    """Raised on UNAUTHENTICATED: the token is missing or unknown."""


class PermissionDeniedError(TaskerError):
    """Raised on PERMISSION_DENIED: the token lacks the role or namespace the call needs."""


class ResourceExhaustedError(TaskerError):
    """Raised on RESOURCE_EXHAUSTED: a configured limit was exceeded."""


class UnavailableError(TaskerError):
    """Raised on UNAVAILABLE: the server is unreachable or shutting down; retry later."""


_BY_STATUS: Dict[grpc.StatusCode, Type[TaskerError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
}


def _metadata_value(metadata: Any, key: str) -> Any:
    for item in metadata or ():
        k, v = (item.key, item.value) if hasattr(item, "key") else item
        if k == key:
            return v
    return None


def _decode_details(raw: Any) -> Dict[str, Any]:
    if raw is None:
        return {}
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else str(raw)
        value = json.loads(text)
    except (UnicodeDecodeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def from_status(
    grpc_code: grpc.StatusCode, message: str, trailing_metadata: Any = None
) -> TaskerError:
    """Builds the :class:`TaskerError` subclass for a status and its trailing metadata."""
    code = _metadata_value(trailing_metadata, ERROR_CODE_KEY)
    if isinstance(code, (bytes, bytearray)):
        code = code.decode("utf-8", "replace")
    details = _decode_details(_metadata_value(trailing_metadata, ERROR_DETAILS_KEY))
    cls = _BY_STATUS.get(grpc_code, TaskerError)
    return cls(message or grpc_code.name, code=code or None, grpc_code=grpc_code, details=details)


def from_rpc_error(error: grpc.RpcError) -> TaskerError:
    """Turns a failed gRPC call into the matching :class:`TaskerError` subclass."""
    call: Any = error
    try:
        grpc_code = call.code()
        message = call.details() or ""
        trailing = call.trailing_metadata()
    except AttributeError:
        return TaskerError(str(error), grpc_code=grpc.StatusCode.UNKNOWN)
    return from_status(grpc_code or grpc.StatusCode.UNKNOWN, message, trailing)


class PermanentError(Exception):
    """Raise from a handler to fail the attempt for good (the step becomes ``error``).

    ``code`` is an application-defined reason such as ``CARD_DECLINED``; ``details``
    any JSON object worth storing with the failure.
    """

    def __init__(
        self, message: str, code: str = "", details: Optional[Mapping[str, Any]] = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.details: Optional[Dict[str, Any]] = dict(details) if details is not None else None


class RetryableError(Exception):
    """Raise from a handler to fail the attempt and ask for another one.

    ``retry_after_ms`` replaces the step's computed backoff (``0`` = as soon as
    possible; ``None`` = use the retry policy). Retries stop when the step's
    ``max_attempts`` is exhausted.
    """

    def __init__(
        self,
        message: str,
        retry_after_ms: Optional[int] = None,
        code: str = "",
        details: Optional[Mapping[str, Any]] = None,
    ) -> None:
        super().__init__(message)
        if retry_after_ms is not None and retry_after_ms < 0:
            raise ValueError("retry_after_ms must be >= 0")
        self.message = message
        self.retry_after_ms = retry_after_ms
        self.code = code
        self.details: Optional[Dict[str, Any]] = dict(details) if details is not None else None


class Cancelled(Exception):
    """Raised by :meth:`tasker.StepContext.raise_if_cancelled` once the step was cancelled.

    Letting it propagate out of the handler ends the attempt without a report: the
    server already cancelled the step (or took it away from this worker).
    """
