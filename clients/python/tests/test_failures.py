"""How handler outcomes map to StepError."""

import json

import pytest

from tasker import Cancelled, PermanentError, RetryableError
from tasker.handler import MAX_BACKTRACE_FRAMES, step_error_from_exception


def raised(exc):
    try:
        raise exc
    except BaseException as caught:  # noqa: B036
        return caught


class CardDeclined(PermanentError):
    pass


def test_ordinary_exception_is_retryable_with_class_message_backtrace():
    err = step_error_from_exception(raised(ValueError("boom")))
    assert err.error_class == "ValueError"
    assert err.message == "boom"
    assert err.retryable is True
    assert not err.HasField("retry_after_ms")
    assert err.code == ""
    assert err.backtrace and "raised" in err.backtrace[0]  # innermost frame first


def test_backtrace_is_innermost_first():
    def inner():
        raise KeyError("k")

    def outer():
        inner()

    err = step_error_from_exception(raised_from(outer))
    names = [line.rsplit(" in ", 1)[1] for line in err.backtrace]
    assert names[:2] == ["inner", "outer"]


def raised_from(fn):
    try:
        fn()
    except BaseException as caught:  # noqa: B036
        return caught
    raise AssertionError("did not raise")


def test_permanent_error_is_not_retryable_and_keeps_code_and_details():
    err = step_error_from_exception(raised(PermanentError("nope", code="CARD_DECLINED", details={"card": "4242"})))
    assert err.retryable is False
    assert err.code == "CARD_DECLINED"
    assert err.message == "nope"
    assert json.loads(err.details_json) == {"card": "4242"}
    assert err.error_class == "tasker.errors.PermanentError"


def test_subclass_of_permanent_error_reports_its_own_class():
    err = step_error_from_exception(raised(CardDeclined("declined", code="CARD_DECLINED")))
    assert err.error_class.endswith("CardDeclined")
    assert err.retryable is False


def test_retryable_error_carries_retry_after():
    err = step_error_from_exception(raised(RetryableError("later", retry_after_ms=250, code="RATE_LIMITED")))
    assert err.retryable is True
    assert err.retry_after_ms == 250
    assert err.code == "RATE_LIMITED"


def test_retryable_error_with_zero_retry_after_is_sent():
    err = step_error_from_exception(raised(RetryableError("now", retry_after_ms=0)))
    assert err.HasField("retry_after_ms") and err.retry_after_ms == 0


def test_retryable_error_without_retry_after_leaves_field_unset():
    err = step_error_from_exception(raised(RetryableError("policy")))
    assert not err.HasField("retry_after_ms")


def test_negative_retry_after_is_refused():
    with pytest.raises(ValueError):
        RetryableError("x", retry_after_ms=-1)


def test_empty_message_falls_back_to_class_name():
    err = step_error_from_exception(raised(RuntimeError()))
    assert err.message == "RuntimeError"


def test_cancelled_is_an_ordinary_retryable_failure_when_reported():
    err = step_error_from_exception(raised(Cancelled("worker stopping")))
    assert err.retryable is True
    assert err.error_class == "tasker.errors.Cancelled"


def test_unserializable_details_do_not_break_the_report():
    err = step_error_from_exception(raised(PermanentError("x", details={"obj": object()})))
    assert "unserializable_details" in json.loads(err.details_json)


def test_backtrace_is_capped():
    def recurse(n):
        if n == 0:
            raise OverflowError("deep")
        recurse(n - 1)

    err = step_error_from_exception(raised_from(lambda: recurse(MAX_BACKTRACE_FRAMES + 20)))
    assert len(err.backtrace) == MAX_BACKTRACE_FRAMES


def test_handlers_may_take_step_alone_or_step_and_context():
    from tasker._runner import normalize_handler

    def one(step):
        return ("one", step)

    def two(step, ctx):
        return ("two", step, ctx)

    def two_with_default(step, ctx=None):
        return ("default", step, ctx)

    class Callable:
        def __call__(self, step):
            return ("obj", step)

    assert normalize_handler(one)("s", "c") == ("one", "s")
    assert normalize_handler(two)("s", "c") == ("two", "s", "c")
    assert normalize_handler(two_with_default)("s", "c") == ("default", "s", "c")
    assert normalize_handler(Callable())("s", "c") == ("obj", "s")
    assert normalize_handler(lambda *args: args)("s", "c") == ("s", "c")
