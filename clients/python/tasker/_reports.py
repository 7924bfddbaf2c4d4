"""Reports kept until the server acknowledges them.

Invariants:

* ``report_id`` is a per-worker counter, so ids increase in the order reports
  were produced; resending in id order keeps the order the server needs per
  (step_id, attempt).
* A report stays in ``_unacked`` from :meth:`ReportBuffer.add` until its
  ResultAck (or until the step is dropped). ``_unsent`` lists the ids still to be
  written to the current stream; after a reconnect :meth:`resend_all` refills it
  with every unacknowledged id, unchanged.
* All state is guarded by one condition variable, which also wakes the sender
  thread (new reports) and anyone waiting for every report to be acknowledged.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any, Iterable, List, Optional, Set, Tuple

from tasker.v1 import common_pb2, worker_pb2

#: Bytes a WorkerMessage(reports=ReportBatch(...)) adds around its reports, with margin.
ENVELOPE_BYTES = 16

StepKey = Tuple[str, int]


def _varint_len(value: int) -> int:
    length = 1
    while value >= 0x80:
        value >>= 7
        length += 1
    return length


def encoded_report_bytes(report: worker_pb2.StepReport) -> int:
    """Bytes one report adds to a ReportBatch (field tag, length prefix and body)."""
    size: int = report.ByteSize()
    return 1 + _varint_len(size) + size


def too_large_failure(report: worker_pb2.StepReport, limit: int) -> worker_pb2.StepReport:
    """The StepFailed (code PAYLOAD_TOO_LARGE) that replaces a report that cannot fit."""
    replacement = worker_pb2.StepReport(
        report_id=report.report_id, step_id=report.step_id, attempt=report.attempt
    )
    replacement.failed.error.CopyFrom(
        common_pb2.StepError(
            error_class="PayloadTooLarge",
            message=f"a {report.WhichOneof('kind')} report of {report.ByteSize()} bytes "
            f"exceeds the server's limit of {limit} bytes",
            retryable=False,
            code="PAYLOAD_TOO_LARGE",
        )
    )
    return replacement


class ReportBuffer:
    """Thread-safe store of step reports and batch completions awaiting delivery."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._next_id = 1
        self._unacked: "OrderedDict[int, worker_pb2.StepReport]" = OrderedDict()
        self._unsent: List[int] = []
        self._batches: List[worker_pb2.BatchCompleted] = []
        self._duplicate: Set[int] = set()
        self._woken = False

    # -- producing -----------------------------------------------------------------

    def add(self, report: worker_pb2.StepReport, duplicate: bool = False) -> int:
        """Assigns the next report_id to ``report``, keeps it and queues it for sending.

        ``duplicate`` sends it twice (the second copy in its own ReportBatch), the
        documented test switch behind ``Worker.debug_duplicate_next_report``.
        """
        with self._cond:
            report.report_id = self._next_id
            self._next_id += 1
            self._unacked[report.report_id] = report
            self._unsent.append(report.report_id)
            if duplicate:
                self._duplicate.add(report.report_id)
            self._cond.notify_all()
            return report.report_id

    def add_batch_completed(self, completed: worker_pb2.BatchCompleted) -> None:
        """Queues a BatchCompleted; it rides along with the next reports (never acked)."""
        with self._cond:
            self._batches.append(completed)
            self._cond.notify_all()

    # -- sending -------------------------------------------------------------------

    def has_unsent(self) -> bool:
        """True when reports or batch completions wait to be written."""
        with self._cond:
            return bool(self._unsent or self._batches)

    def wait_unsent(self, timeout: Optional[float]) -> bool:
        """Blocks until something waits to be written, :meth:`wake` is called, or
        ``timeout`` seconds pass; returns True when something waits to be written."""
        with self._cond:
            self._cond.wait_for(lambda: bool(self._unsent or self._batches or self._woken), timeout)
            self._woken = False
            return bool(self._unsent or self._batches)

    def wake(self) -> None:
        """Wakes a thread blocked in :meth:`wait_unsent` (used when stopping)."""
        with self._cond:
            self._woken = True
            self._cond.notify_all()

    def take(self, max_bytes: int = 0) -> List[worker_pb2.ReportBatch]:
        """Removes everything unsent and packs it into ReportBatch messages.

        Each message stays below ``max_bytes`` (0 = no limit) once wrapped in a
        WorkerMessage. A report that cannot fit even alone is replaced, under the
        same report_id, by a StepFailed with code PAYLOAD_TOO_LARGE. A report
        marked duplicate is followed by a second ReportBatch holding it again.
        """
        with self._cond:
            ids, self._unsent = self._unsent, []
            completions, self._batches = self._batches, []
            reports = [self._unacked[i] for i in ids if i in self._unacked]
            limit = max_bytes - ENVELOPE_BYTES if max_bytes > 0 else 0
            for index, report in enumerate(reports):
                if limit and encoded_report_bytes(report) > limit:
                    replacement = too_large_failure(report, max_bytes)
                    self._unacked[report.report_id] = replacement
                    reports[index] = replacement
            duplicates = [r for r in reports if r.report_id in self._duplicate]
            self._duplicate.difference_update(r.report_id for r in duplicates)
        out = _pack(reports, completions, limit)
        out.extend(worker_pb2.ReportBatch(reports=[r]) for r in duplicates)
        return out

    def resend_all(self) -> int:
        """After a resumed Welcome: queue every unacknowledged report again, in id order."""
        with self._cond:
            self._unsent = sorted(self._unacked)
            self._cond.notify_all()
            return len(self._unsent)

    # -- acknowledging and dropping --------------------------------------------------

    def ack(self, report_id: int) -> Optional[worker_pb2.StepReport]:
        """Forgets an acknowledged report; returns it, or None if it was not held."""
        with self._cond:
            report = self._unacked.pop(report_id, None)
            self._duplicate.discard(report_id)
            self._cond.notify_all()
            return report

    def discard_steps(self, keys: Iterable[StepKey]) -> int:
        """Forgets every report about the given (step_id, attempt) pairs."""
        wanted = set(keys)
        with self._cond:
            drop = [i for i, r in self._unacked.items() if (r.step_id, r.attempt) in wanted]
            for report_id in drop:
                del self._unacked[report_id]
                self._duplicate.discard(report_id)
            if drop:
                self._unsent = [i for i in self._unsent if i in self._unacked]
                self._cond.notify_all()
            return len(drop)

    def discard_all(self) -> int:
        """Forgets every report (their session is gone); returns how many were dropped."""
        with self._cond:
            dropped = len(self._unacked)
            self._unacked.clear()
            self._unsent = []
            self._batches = []
            self._duplicate.clear()
            self._cond.notify_all()
            return dropped

    # -- observing -------------------------------------------------------------------

    def unacked_count(self) -> int:
        """Number of reports not yet acknowledged."""
        with self._cond:
            return len(self._unacked)

    def unacked_reports(self) -> List[worker_pb2.StepReport]:
        """Reports not yet acknowledged, in report_id order."""
        with self._cond:
            return list(self._unacked.values())

    def unacked_ids(self) -> List[int]:
        """report_ids not yet acknowledged, in increasing order."""
        with self._cond:
            return sorted(self._unacked)

    def wait_all_acked(self, timeout: Optional[float]) -> bool:
        """Blocks until no report awaits its ack, or ``timeout`` seconds pass."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._unacked:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining if remaining is None else min(remaining, 0.5))
            return True


def _pack(
    reports: List[worker_pb2.StepReport],
    completions: List[worker_pb2.BatchCompleted],
    limit: int,
) -> List[worker_pb2.ReportBatch]:
    """Splits reports and completions into as few ReportBatch messages as the limit allows."""
    out: List[worker_pb2.ReportBatch] = []
    current = worker_pb2.ReportBatch()
    size = 0
    items: List[Any] = [*reports, *completions]
    for item in items:
        body: int = item.ByteSize()
        item_size = 1 + _varint_len(body) + body
        if limit and size and size + item_size > limit:
            out.append(current)
            current = worker_pb2.ReportBatch()
            size = 0
        if isinstance(item, worker_pb2.StepReport):
            current.reports.append(item)
        else:
            current.batches.append(item)
        size += item_size
    if size:
        out.append(current)
    return out
