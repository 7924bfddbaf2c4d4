"""Report bookkeeping: ids, coalescing, acks, resend after reconnect, size limits."""

from tasker._batches import COMPLETED, DROPPED, FAILED, BatchTracker
from tasker._reports import ReportBuffer, encoded_report_bytes
from tasker.v1 import worker_pb2


def completed(step_id: str, attempt: int = 1, size: int = 2) -> worker_pb2.StepReport:
    body = b'"' + b"x" * max(0, size - 2) + b'"'
    return worker_pb2.StepReport(step_id=step_id, attempt=attempt, completed=worker_pb2.StepCompleted(result_json=body))


def started(step_id: str) -> worker_pb2.StepReport:
    return worker_pb2.StepReport(step_id=step_id, attempt=1, started=worker_pb2.StepStarted())


def ids(batches):
    return [r.report_id for b in batches for r in b.reports]


def test_report_ids_increase_and_reports_coalesce_into_one_batch():
    buf = ReportBuffer()
    assert [buf.add(started("a")), buf.add(started("b")), buf.add(completed("a"))] == [1, 2, 3]
    batches = buf.take()
    assert len(batches) == 1
    assert ids(batches) == [1, 2, 3]
    assert not buf.has_unsent()
    assert buf.unacked_count() == 3


def test_ack_forgets_only_that_report_and_unknown_acks_are_ignored():
    buf = ReportBuffer()
    buf.add(started("a"))
    buf.add(completed("a"))
    buf.take()
    assert buf.ack(1).step_id == "a"
    assert buf.ack(1) is None
    assert buf.ack(99) is None
    assert buf.unacked_ids() == [2]


def test_resend_all_requeues_unacked_reports_with_original_ids_in_order():
    buf = ReportBuffer()
    for step in ("a", "b", "c"):
        buf.add(completed(step))
    buf.take()
    buf.ack(2)
    buf.add(started("d"))  # produced while disconnected, never sent
    assert buf.resend_all() == 3
    batches = buf.take()
    assert ids(batches) == [1, 3, 4]
    assert [r.step_id for b in batches for r in b.reports] == ["a", "c", "d"]


def test_acked_report_is_not_resent_even_if_queued_for_resend():
    buf = ReportBuffer()
    buf.add(completed("a"))
    buf.take()
    buf.resend_all()
    buf.ack(1)
    assert buf.take() == []


def test_batches_split_below_max_bytes():
    buf = ReportBuffer()
    for step in ("a", "b", "c", "d"):
        buf.add(completed(step, size=400))
    one = encoded_report_bytes(completed("a", size=400))
    limit = 2 * one + 16 + 5  # room for two reports per message
    batches = buf.take(limit)
    assert [len(b.reports) for b in batches] == [2, 2]
    assert all(b.ByteSize() + 16 <= limit + 16 for b in batches)
    assert ids(batches) == [1, 2, 3, 4]


def test_report_that_cannot_fit_is_replaced_by_payload_too_large_failure():
    buf = ReportBuffer()
    buf.add(completed("big", size=5000))
    (batch,) = buf.take(1024)
    (report,) = batch.reports
    assert report.report_id == 1
    assert report.WhichOneof("kind") == "failed"
    assert report.failed.error.code == "PAYLOAD_TOO_LARGE"
    assert report.failed.error.retryable is False
    # the replacement is what gets resent
    buf.resend_all()
    (again,) = buf.take(1024)
    assert again.reports[0].failed.error.code == "PAYLOAD_TOO_LARGE"


def test_duplicate_flag_sends_same_report_twice_once():
    buf = ReportBuffer()
    buf.add(completed("a"), duplicate=True)
    batches = buf.take()
    assert ids(batches) == [1, 1]
    assert len(batches) == 2  # the copy travels in its own ReportBatch
    buf.resend_all()
    assert ids(buf.take()) == [1]


def test_discard_steps_and_discard_all():
    buf = ReportBuffer()
    buf.add(started("a"))
    buf.add(started("b"))
    buf.add(completed("a"))
    assert buf.discard_steps([("a", 1)]) == 2
    assert [r.step_id for b in buf.take() for r in b.reports] == ["b"]
    assert buf.discard_all() == 1
    assert buf.unacked_count() == 0
    assert buf.wait_all_acked(0)


def test_batch_completed_rides_with_reports():
    buf = ReportBuffer()
    buf.add(completed("a"))
    buf.add_batch_completed(worker_pb2.BatchCompleted(batch_id="b1", completed=1))
    (batch,) = buf.take()
    assert [c.batch_id for c in batch.batches] == ["b1"]


def test_wait_all_acked_times_out_while_reports_are_pending():
    buf = ReportBuffer()
    buf.add(started("a"))
    assert buf.wait_all_acked(0.01) is False
    buf.ack(1)
    assert buf.wait_all_acked(0.01) is True


def test_batch_tracker_reports_counts_once_every_step_settled():
    tracker = BatchTracker()
    tracker.open("b1", [("a", 1), ("b", 1), ("c", 2)])
    assert tracker.settle(("a", 1), COMPLETED) is None
    assert tracker.settle(("b", 1), FAILED) is None
    done = tracker.settle(("c", 2), DROPPED)
    assert (done.batch_id, done.completed, done.failed) == ("b1", 1, 1)
    assert tracker.open_batches() == 0
    assert tracker.settle(("a", 1), COMPLETED) is None
