"""Tasker's Python SDK: a Celery-like worker and an application client.

Workers::

    from tasker import Worker
    worker = Worker("localhost:50051", token="...")

    @worker.handler("payments.charge")
    def charge(step, ctx):
        return {"charged": step.context["amount"]}

    worker.run()

Applications::

    from tasker import TaskerClient
    client = TaskerClient("localhost:50051", token="...")
    created = client.create_task("payments", "process_refund", {"amount": 5})
"""

__version__ = "0.1.0"

from tasker.errors import (  # noqa: E402
    AlreadyExistsError,
    Cancelled,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    ResourceExhaustedError,
    RetryableError,
    TaskerError,
    UnauthenticatedError,
    UnavailableError,
    Violation,
)
from tasker.handler import Step, StepContext  # noqa: E402
from tasker.worker import SessionInfo, Worker  # noqa: E402
from tasker.client import Subscription, TaskerClient  # noqa: E402

__all__ = [
    "__version__",
    "Worker",
    "SessionInfo",
    "Step",
    "StepContext",
    "TaskerClient",
    "Subscription",
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
]
