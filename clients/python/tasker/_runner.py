"""Runs assigned steps on a thread pool and turns their outcomes into reports.

Locking: ``self._cond`` guards the job table and the batch tracker. It may be
held while calling into the :class:`ReportBuffer` (which takes its own lock and
never calls back), never while a handler runs.

A job is *dropped* when the step is no longer this worker's (the server cancelled
it, rejected one of its reports as stale, or did not list it on resume): it gets
its cancel event set and produces no further reports. A job that is merely
cancelled because the worker is stopping still reports its outcome.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

from tasker import _convert
from tasker._batches import COMPLETED, DROPPED, FAILED, BatchTracker
from tasker._reports import ENVELOPE_BYTES, ReportBuffer, encoded_report_bytes, too_large_failure
from tasker.errors import PermanentError
from tasker.handler import Handler, Step, StepContext, step_error_from_exception
from tasker.v1 import common_pb2, worker_pb2

StepKey = Tuple[str, int]
StepFn = Callable[[Step, StepContext], Any]


def normalize_handler(fn: Handler) -> StepFn:
    """Accepts ``fn(step, ctx)`` or ``fn(step)``; returns a two-argument callable."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return fn  # type: ignore[return-value]
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    takes_varargs = any(p.kind == p.VAR_POSITIONAL for p in params)
    if len(positional) == 1 and not takes_varargs:
        single: Callable[[Step], Any] = fn  # type: ignore[assignment]
        return lambda step, ctx: single(step)
    return fn  # type: ignore[return-value]


@dataclass
class _Job:
    step: Step
    ctx: StepContext
    batch_id: str
    seq: int = 0
    dropped: bool = False
    duplicate_next: bool = False
    preset_error: Optional[common_pb2.StepError] = None


class StepRunner:
    """Owns the steps this worker holds, from assignment to final report."""

    def __init__(
        self,
        handlers: Dict[str, StepFn],
        reports: ReportBuffer,
        concurrency: int,
        logger: logging.Logger,
    ) -> None:
        self._handlers = handlers
        self._reports = reports
        self._logger = logger
        self._cond = threading.Condition()
        self._jobs: Dict[StepKey, _Job] = {}
        self._batches = BatchTracker()
        self._executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="tasker-step")
        self._local = threading.local()
        self._duplicate_any = False
        self._closed = False
        #: Welcome.max_report_bytes of the current session (0 = unknown, no check).
        self.max_report_bytes = 0

    # -- assignment ----------------------------------------------------------------

    def assign(self, batch: worker_pb2.StepBatch) -> int:
        """Starts every step of a batch; returns how many were started."""
        started: List[_Job] = []
        with self._cond:
            if self._closed:
                self._logger.warning("ignoring batch %s: worker stopped", batch.batch_id)
                return 0
            for assignment in batch.steps:
                key = (assignment.step_id, assignment.attempt)
                if key in self._jobs:
                    self._logger.warning("step %s attempt %s assigned twice", *key)
                    continue
                job = self._new_job(assignment, batch.batch_id)
                self._jobs[key] = job
                started.append(job)
            self._batches.open(batch.batch_id, [(j.step.step_id, j.step.attempt) for j in started])
        for job in started:
            self._executor.submit(self._run, job)
        return len(started)

    def _new_job(self, assignment: worker_pb2.StepAssignment, batch_id: str) -> _Job:
        preset: Optional[common_pb2.StepError] = None
        try:
            step = Step.from_assignment(assignment)
        except ValueError as exc:
            step = Step(
                step_id=assignment.step_id,
                attempt=assignment.attempt,
                task_id=assignment.task_id,
                step_name=assignment.step_name,
                handler=assignment.handler,
            )
            preset = common_pb2.StepError(
                error_class="InvalidAssignment",
                message=f"assignment JSON could not be decoded: {exc}",
                retryable=False,
                code="INVALID_ASSIGNMENT",
            )
        ctx = StepContext(step, self._progress, self._logger)
        return _Job(step=step, ctx=ctx, batch_id=batch_id, preset_error=preset)

    # -- running -------------------------------------------------------------------

    def _run(self, job: _Job) -> None:
        self._local.job = job
        try:
            if job.dropped:
                self._finish(job, None)
                return
            self._emit(job, started=worker_pb2.StepStarted(started_at=_convert.now_timestamp()))
            self._finish(job, self._outcome(job))
        except Exception:  # a bug here must not kill the pool thread silently
            self._logger.exception("internal error while running step %s", job.step.step_id)
            self._finish(job, None)
        finally:
            self._local.job = None

    def _outcome(self, job: _Job) -> worker_pb2.StepReport:
        report = worker_pb2.StepReport(step_id=job.step.step_id, attempt=job.step.attempt)
        if job.preset_error is not None:
            report.failed.error.CopyFrom(job.preset_error)
            return report
        fn = self._handlers.get(job.step.handler)
        try:
            if fn is None:
                raise PermanentError(
                    f"no handler registered for {job.step.handler!r}", code="HANDLER_NOT_FOUND"
                )
            result = fn(job.step, job.ctx)
        except BaseException as exc:  # noqa: B036 - every handler outcome is reported
            report.failed.error.CopyFrom(step_error_from_exception(exc))
            if not isinstance(exc, Exception):
                job.ctx.logger.warning("handler raised %s", type(exc).__name__)
            return report
        try:
            report.completed.result_json = _convert.dumps(result)
        except (TypeError, ValueError) as exc:
            report.failed.error.CopyFrom(
                common_pb2.StepError(
                    error_class=type(exc).__name__,
                    message=f"handler result is not JSON-serializable: {exc}",
                    retryable=False,
                    code="RESULT_NOT_SERIALIZABLE",
                )
            )
            return report
        limit = self.max_report_bytes - ENVELOPE_BYTES
        if self.max_report_bytes and encoded_report_bytes(report) > limit:
            return too_large_failure(report, self.max_report_bytes)
        return report

    def _finish(self, job: _Job, final: Optional[worker_pb2.StepReport]) -> None:
        key = (job.step.step_id, job.step.attempt)
        with self._cond:
            if self._jobs.get(key) is job:
                del self._jobs[key]
            outcome = DROPPED
            if final is not None and not job.dropped:
                outcome = COMPLETED if final.WhichOneof("kind") == "completed" else FAILED
                self._add(job, final)
            completed = self._batches.settle(key, outcome)
            if completed is not None:
                self._reports.add_batch_completed(completed)
            self._cond.notify_all()

    def _progress(self, ctx: StepContext, payload: Any) -> None:
        data = _convert.dumps(payload)
        key = (ctx.step.step_id, ctx.step.attempt)
        with self._cond:
            job = self._jobs.get(key)
            if job is None or job.ctx is not ctx or job.dropped:
                return
            report = worker_pb2.StepReport(
                step_id=key[0],
                attempt=key[1],
                progress=worker_pb2.StepProgress(seq=job.seq + 1, payload_json=data),
            )
            limit = self.max_report_bytes - ENVELOPE_BYTES
            if self.max_report_bytes and encoded_report_bytes(report) > limit:
                raise PermanentError(
                    f"progress payload of {len(data)} bytes exceeds the server's limit of "
                    f"{self.max_report_bytes} bytes",
                    code="PAYLOAD_TOO_LARGE",
                )
            job.seq += 1
            self._add(job, report)

    def _emit(self, job: _Job, **kind: Any) -> None:
        with self._cond:
            if not job.dropped:
                self._add(job, worker_pb2.StepReport(step_id=job.step.step_id, attempt=job.step.attempt, **kind))

    def _add(self, job: _Job, report: worker_pb2.StepReport) -> None:
        duplicate = job.duplicate_next or self._duplicate_any
        job.duplicate_next = False
        self._duplicate_any = False
        self._reports.add(report, duplicate=duplicate)

    # -- control from the session ----------------------------------------------------

    def arm_duplicate(self) -> None:
        """Sends the next report twice: the calling handler's, else anyone's."""
        job: Optional[_Job] = getattr(self._local, "job", None)
        with self._cond:
            if job is not None:
                job.duplicate_next = True
            else:
                self._duplicate_any = True

    def on_rejected(self, ack: worker_pb2.ResultAck, report: Optional[worker_pb2.StepReport]) -> None:
        """Reacts to a REJECTED ack: the step is no longer ours, or its payload was refused.

        A refused final payload (PAYLOAD_TOO_LARGE, INVALID_PAYLOAD) is replaced by a
        non-retryable StepFailed with the rejection reason as its code, so the step
        fails now instead of timing out.
        """
        reason = worker_pb2.RejectReason.Name(ack.reason).replace("REJECT_REASON_", "")
        if ack.reason in (
            worker_pb2.REJECT_REASON_PAYLOAD_TOO_LARGE,
            worker_pb2.REJECT_REASON_INVALID_PAYLOAD,
        ):
            kind = report.WhichOneof("kind") if report is not None else None
            already = kind == "failed" and report is not None and report.failed.error.code == reason
            if kind in ("completed", "failed") and not already:
                replacement = worker_pb2.StepReport(step_id=ack.step_id, attempt=ack.attempt)
                replacement.failed.error.CopyFrom(
                    common_pb2.StepError(
                        error_class="PayloadRejected",
                        message=ack.message or f"the server refused the {kind} report",
                        retryable=False,
                        code=reason,
                    )
                )
                self._reports.add(replacement)
            return
        self.drop([(ack.step_id, ack.attempt)], f"report rejected: {reason}")

    def in_handler_thread(self) -> bool:
        """True when called from a thread currently running a step."""
        return getattr(self._local, "job", None) is not None

    def drop(self, keys: Iterable[StepKey], reason: str) -> List[StepKey]:
        """Cancels the given steps and forgets their reports; returns those that were running."""
        wanted = set(keys)
        hit: List[StepKey] = []
        with self._cond:
            for key in wanted:
                job = self._jobs.get(key)
                if job is not None and not job.dropped:
                    job.dropped = True
                    job.ctx._cancel(reason)
                    hit.append(key)
            self._reports.discard_steps(wanted)
        return hit

    def drop_all_except(self, keep: Set[StepKey], reason: str) -> List[StepKey]:
        """Drops every running step not in ``keep`` (after a resume or a new session)."""
        with self._cond:
            others = [key for key in self._jobs if key not in keep]
        return self.drop(others, reason)

    def cancel_all(self, reason: str) -> int:
        """Signals cancellation to every running handler (they still report); returns how many."""
        with self._cond:
            jobs = list(self._jobs.values())
        return sum(1 for job in jobs if job.ctx._cancel(reason))

    def forget_batches(self) -> None:
        """Forgets batch bookkeeping of a session that is gone."""
        with self._cond:
            self._batches.clear()

    def held_keys(self) -> Set[StepKey]:
        """(step_id, attempt) of every step still running here."""
        with self._cond:
            return set(self._jobs)

    def running_count(self) -> int:
        """Number of steps whose handler has not returned yet."""
        with self._cond:
            return len(self._jobs)

    def wait_idle(self, timeout: Optional[float]) -> bool:
        """Blocks until no handler runs, or ``timeout`` seconds pass."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._jobs:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self) -> None:
        """Refuses further batches and releases the pool (running handlers finish on their own)."""
        with self._cond:
            self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
