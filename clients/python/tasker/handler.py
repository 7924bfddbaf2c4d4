"""What a step handler receives and how its outcome becomes a report.

A handler is any callable ``handler(step: Step, ctx: StepContext) -> Any`` (or
``handler(step)``). Its return value, which must be JSON-serializable, becomes the
step's result; an exception becomes a failure as mapped by
:func:`step_error_from_exception`.
"""

from __future__ import annotations

import datetime as _dt
import logging
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Union

from tasker import _convert
from tasker.errors import Cancelled, PermanentError, RetryableError
from tasker.v1 import common_pb2, worker_pb2

__all__ = ["Step", "StepContext", "Handler", "step_error_from_exception", "MAX_BACKTRACE_FRAMES"]

#: Frames kept in a reported backtrace (the server may keep fewer).
MAX_BACKTRACE_FRAMES = 50


@dataclass(frozen=True)
class Step:
    """One attempt of one step, as assigned to this worker."""

    step_id: str
    attempt: int
    task_id: str
    step_name: str
    handler: str
    #: The step's handler_config (after the server's environment overrides).
    handler_config: Dict[str, Any] = field(default_factory=dict)
    #: The task context.
    context: Dict[str, Any] = field(default_factory=dict)
    #: Results of every ancestor step that has one, keyed by step name.
    ancestor_results: Dict[str, Any] = field(default_factory=dict)
    namespace: str = ""
    template_name: str = ""
    template_version: str = ""
    #: When the server times the attempt out (None when it sent no deadline).
    deadline: Optional[_dt.datetime] = None
    correlation_id: str = ""
    #: Number of the last attempt the step's current retry allowance permits
    #: (``attempt == max_attempts`` is the last): the retry policy's max_attempts
    #: until an operator retries the step, then the attempts already made plus that
    #: allowance.
    max_attempts: int = 0
    timeout_ms: int = 0

    @property
    def is_last_attempt(self) -> bool:
        """True when a retryable failure of this attempt will not be retried."""
        return self.max_attempts > 0 and self.attempt >= self.max_attempts

    @classmethod
    def from_assignment(cls, assignment: worker_pb2.StepAssignment) -> "Step":
        """Decodes a StepAssignment; raises ValueError when its JSON is malformed."""
        return cls(
            step_id=assignment.step_id,
            attempt=assignment.attempt,
            task_id=assignment.task_id,
            step_name=assignment.step_name,
            handler=assignment.handler,
            handler_config=_convert.loads_object(assignment.handler_config_json),
            context=_convert.loads_object(assignment.context_json),
            ancestor_results=_convert.loads_object(assignment.ancestor_results_json),
            namespace=assignment.template.namespace,
            template_name=assignment.template.name,
            template_version=assignment.template.version,
            deadline=_convert.timestamp_to_datetime(assignment, "deadline"),
            correlation_id=assignment.correlation_id,
            max_attempts=assignment.max_attempts,
            timeout_ms=assignment.timeout_ms,
        )


class StepContext:
    """The running attempt's side of the conversation with the worker.

    Thread-safe: a handler may report progress or check cancellation from helper
    threads it starts.
    """

    def __init__(
        self,
        step: Step,
        progress_sink: Callable[["StepContext", Any], None],
        logger: logging.Logger,
    ) -> None:
        self.step = step
        #: Set once the step is cancelled (task cancelled, lease lost, worker stopping).
        self.cancel_event = threading.Event()
        #: Logger carrying the step's identifiers in ``extra``.
        self.logger: logging.LoggerAdapter = logging.LoggerAdapter(  # type: ignore[type-arg]
            logger,
            {
                "step_id": step.step_id,
                "task_id": step.task_id,
                "attempt": step.attempt,
                "correlation_id": step.correlation_id,
            },
        )
        self._progress_sink = progress_sink
        self._cancel_reason: Optional[str] = None
        self._lock = threading.Lock()

    @property
    def cancelled(self) -> bool:
        """True once the step was cancelled; the handler should stop soon."""
        return self.cancel_event.is_set()

    @property
    def cancel_reason(self) -> Optional[str]:
        """Why the step was cancelled, or None while it was not."""
        with self._lock:
            return self._cancel_reason

    def raise_if_cancelled(self) -> None:
        """Raises :class:`tasker.Cancelled` if the step was cancelled."""
        if self.cancel_event.is_set():
            raise Cancelled(self.cancel_reason or "step cancelled")

    def wait_cancelled(self, timeout: Optional[float] = None) -> bool:
        """Sleeps up to ``timeout`` seconds, waking early on cancellation; returns ``cancelled``."""
        return self.cancel_event.wait(timeout)

    def progress(self, payload: Any) -> None:
        """Reports progress (any JSON value), stored and replayed to WatchTask.

        Ignored once the step was cancelled. Raises TypeError/ValueError when
        ``payload`` is not JSON-serializable.
        """
        self._progress_sink(self, payload)

    def remaining(self) -> Optional[float]:
        """Seconds left before the server times the attempt out (None without a deadline)."""
        if self.step.deadline is None:
            return None
        now = _dt.datetime.now(tz=_dt.timezone.utc)
        return max(0.0, (self.step.deadline - now).total_seconds())

    def _cancel(self, reason: str) -> bool:
        """Marks the step cancelled; returns False if it already was."""
        with self._lock:
            if self._cancel_reason is not None:
                return False
            self._cancel_reason = reason
        self.cancel_event.set()
        return True


#: A step handler: ``(step, ctx) -> result`` or ``(step) -> result``.
Handler = Union[Callable[[Step, StepContext], Any], Callable[[Step], Any]]


def error_class_name(exc: BaseException) -> str:
    """The exception's class as Python prints it: ``ValueError``, ``requests.exceptions.Timeout``."""
    cls = type(exc)
    module = cls.__module__
    if module in ("builtins", "__main__", None):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def _backtrace(exc: BaseException) -> List[str]:
    frames = traceback.extract_tb(exc.__traceback__)
    lines = [f'File "{f.filename}", line {f.lineno}, in {f.name}' for f in frames]
    lines.reverse()  # innermost first, as the contract asks
    return lines[:MAX_BACKTRACE_FRAMES]


def step_error_from_exception(exc: BaseException) -> common_pb2.StepError:
    """Maps what a handler raised to the StepError reported to the server.

    * :class:`PermanentError` -> not retryable, with its ``code`` and ``details``;
    * :class:`RetryableError` -> retryable, with ``retry_after_ms`` when given;
    * anything else -> retryable, class name, message and backtrace.
    """
    error = common_pb2.StepError(
        error_class=error_class_name(exc),
        message=str(exc) or type(exc).__name__,
        backtrace=_backtrace(exc),
        retryable=True,
    )
    details: Optional[Dict[str, Any]] = None
    if isinstance(exc, PermanentError):
        error.message = exc.message
        error.retryable = False
        error.code = exc.code
        details = exc.details
    elif isinstance(exc, RetryableError):
        error.message = exc.message
        error.code = exc.code
        details = exc.details
        if exc.retry_after_ms is not None:
            error.retry_after_ms = int(exc.retry_after_ms)
    if details is not None:
        try:
            error.details_json = _convert.dumps(details)
        except (TypeError, ValueError):
            error.details_json = _convert.dumps({"unserializable_details": repr(details)})
    return error
