"""Server errors (status + tasker-error-* trailers) become TaskerError subclasses."""

import json

import grpc
import pytest

from tasker import errors
from tasker.errors import from_status


def md(code=None, details=None):
    out = []
    if code is not None:
        out.append(("tasker-error-code", code))
    if details is not None:
        out.append(("tasker-error-details-bin", json.dumps(details).encode("utf-8")))
    return tuple(out)


@pytest.mark.parametrize(
    "status, cls",
    [
        (grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidArgumentError),
        (grpc.StatusCode.NOT_FOUND, errors.NotFoundError),
        (grpc.StatusCode.ALREADY_EXISTS, errors.AlreadyExistsError),
        (grpc.StatusCode.FAILED_PRECONDITION, errors.FailedPreconditionError),
        (grpc.StatusCode.UNAUTHENTICATED, errors.UnauthenticatedError),
        (grpc.StatusCode.PERMISSION_DENIED, errors.PermissionDeniedError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, errors.ResourceExhaustedError),
        (grpc.StatusCode.UNAVAILABLE, errors.UnavailableError),
    ],
)
def test_each_status_maps_to_its_class(status, cls):
    err = from_status(status, "msg", md("SOME_REASON", {"k": 1}))
    assert type(err) is cls
    assert isinstance(err, errors.TaskerError)
    assert err.code == "SOME_REASON"
    assert err.grpc_code == status
    assert err.details == {"k": 1}
    assert err.message == "msg"


def test_internal_without_trailers_is_the_base_class_with_status_name_as_code():
    err = from_status(grpc.StatusCode.INTERNAL, "internal error")
    assert type(err) is errors.TaskerError
    assert err.code == "INTERNAL"
    assert err.details == {}


def test_validation_violations_are_parsed():
    details = {"violations": [{"path": "/steps/1/depends_on/0", "message": "unknown step x"}]}
    err = from_status(grpc.StatusCode.INVALID_ARGUMENT, "invalid", md("VALIDATION_FAILED", details))
    assert err.violations == [errors.Violation("/steps/1/depends_on/0", "unknown step x")]


def test_malformed_details_are_ignored():
    trailers = (("tasker-error-code", "X"), ("tasker-error-details-bin", b"\xff not json"))
    err = from_status(grpc.StatusCode.NOT_FOUND, "m", trailers)
    assert err.details == {}
    assert err.code == "X"


def test_str_shows_code_and_message():
    err = from_status(grpc.StatusCode.NOT_FOUND, "task t1 not found", md("TASK_NOT_FOUND"))
    assert str(err) == "TASK_NOT_FOUND: task t1 not found"
