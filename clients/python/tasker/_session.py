"""The worker's session: connect, resume, read, send, heartbeat.

Two threads live here:

* the *connection* thread opens a Connect stream, reads every ServerMessage and
  dispatches it, and when the stream ends reconnects (with the session handle)
  after a jittered exponential backoff;
* the *sender* thread writes coalesced ReportBatch messages and a Heartbeat every
  ``Welcome.heartbeat_interval_ms``, so a busy handler never silences the session.

``self._cond`` guards the session state below; listeners run outside it. The
session handle is a bearer secret: it is kept in memory and never logged.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable, List, Optional, Tuple

import grpc

from tasker import _convert
from tasker._backoff import Backoff
from tasker._channel import Metadata
from tasker._reports import ReportBuffer
from tasker._runner import StepRunner
from tasker._stream import SessionStream
from tasker.errors import TaskerError, from_rpc_error
from tasker.v1 import common_pb2, worker_pb2, worker_pb2_grpc

#: Statuses after which reconnecting cannot help: the worker stops and reports the error.
FATAL_STATUSES = frozenset(
    {
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
#: Reasons after which reconnecting cannot help, whatever the status.
FATAL_REASONS = frozenset({"HELLO_TEMPLATES_UNSUPPORTED"})
#: How long reports produced together wait to share one ReportBatch, in seconds.
REPORT_LINGER_S = 0.002
_DEFAULT_HEARTBEAT_S = 5.0


class _InternalStreamError(grpc.RpcError):  # type: ignore[misc]
    """Stands for a stream the worker abandoned after an error of its own."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self._cause = cause

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.INTERNAL

    def details(self) -> str:
        return f"worker-side error: {self._cause}"

    def trailing_metadata(self) -> tuple:  # type: ignore[type-arg]
        return ()


@dataclass(frozen=True)
class SessionInfo:
    """What the server said in its latest Welcome (the handle is deliberately absent)."""

    session_id: str
    resumed: bool
    #: (step_id, attempt) of the steps still leased to the session on resume.
    in_flight: Tuple[Tuple[str, int], ...]
    server_instance: str
    heartbeat_interval_ms: int
    lease_ms: int
    max_report_bytes: int
    #: 1 for the first Welcome this worker received, then +1 per Welcome.
    generation: int


class Session:
    """Keeps one worker session alive across stream failures."""

    def __init__(
        self,
        stub: worker_pb2_grpc.WorkerServiceStub,
        metadata: Metadata,
        hello: worker_pb2.Hello,
        runner: StepRunner,
        reports: ReportBuffer,
        logger: logging.Logger,
        on_fatal: Callable[[TaskerError], None],
        backoff: Optional[Backoff] = None,
    ) -> None:
        self._stub = stub
        self._metadata = metadata
        self._hello = hello
        self._runner = runner
        self._reports = reports
        self._logger = logger
        self._on_fatal = on_fatal
        self._backoff = backoff or Backoff()
        self._cond = threading.Condition()
        self._listeners: List[Callable[[SessionInfo], None]] = []
        self._handle = ""
        self._current: Optional[SessionStream] = None
        self._welcomed: Optional[SessionStream] = None
        self._info: Optional[SessionInfo] = None
        self._heartbeat_s = _DEFAULT_HEARTBEAT_S
        self._next_heartbeat = 0.0
        self._drain: Optional[worker_pb2.Drain] = None
        self._closing = False
        self._wake = threading.Event()
        self._threads: List[threading.Thread] = []

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Starts the connection and sender threads."""
        for target, name in ((self._connect_loop, "tasker-connection"), (self._send_loop, "tasker-sender")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def add_listener(self, listener: Callable[[SessionInfo], None]) -> None:
        """Calls ``listener(info)`` after every Welcome (on the connection thread)."""
        with self._cond:
            self._listeners.append(listener)

    def drain(self, reason: str, grace_ms: int) -> None:
        """Asks the server for no new steps, now and on every later (re)connection."""
        message = worker_pb2.Drain(reason=reason, grace_ms=max(0, grace_ms))
        with self._cond:
            self._drain = message
            stream = self._welcomed
        if stream is not None:
            stream.send(worker_pb2.WorkerMessage(drain=message))

    def interrupt(self) -> None:
        """Drops the current stream as a network fault would; the session then resumes."""
        with self._cond:
            stream = self._current
        if stream is not None:
            self._logger.info("dropping the session stream on request")
            stream.abort()

    def close(self, timeout: float) -> None:
        """Ends the stream gracefully (half-close), stops reconnecting and joins the threads."""
        with self._cond:
            self._closing = True
            stream = self._current
            self._cond.notify_all()
        self._wake.set()
        self._reports.wake()
        if stream is not None:
            stream.close()
        if not self._threads:
            return
        connection, sender = self._threads
        connection.join(timeout)
        if connection.is_alive() and stream is not None:
            stream.abort()
            connection.join(2.0)
        sender.join(2.0)

    @property
    def info(self) -> Optional[SessionInfo]:
        """The latest Welcome, or None before the first."""
        with self._cond:
            return self._info

    @property
    def connected(self) -> bool:
        """True while a welcomed stream is attached."""
        with self._cond:
            return self._welcomed is not None

    def wait_for_welcome(self, after_generation: int, timeout: Optional[float]) -> Optional[SessionInfo]:
        """Blocks until a Welcome newer than ``after_generation`` arrives; None on
        timeout or once the session is closing."""

        def newer() -> bool:
            return self._info is not None and self._info.generation > after_generation

        with self._cond:
            self._cond.wait_for(lambda: newer() or self._closing, timeout)
            return self._info if newer() else None

    # -- connection thread -----------------------------------------------------------

    def _connect_loop(self) -> None:
        while True:
            with self._cond:
                if self._closing:
                    return
                stream = SessionStream(self._stub, self._metadata)
                self._current = stream
                hello = self._next_hello()
            error: Optional[grpc.RpcError] = None
            try:
                for message in stream.open(hello):
                    self._dispatch(stream, message)
            except grpc.RpcError as exc:
                error = exc
            except Exception as exc:  # a dispatch bug: start over on a fresh stream
                self._logger.exception("internal error on the session stream")
                stream.abort()
                error = _InternalStreamError(exc)
            finally:
                self._detach(stream)
            with self._cond:
                if self._closing:
                    return
            delay = self._after_stream(stream, error)
            if delay is None:
                return
            if delay > 0:
                self._wake.wait(delay)

    def _next_hello(self) -> worker_pb2.Hello:
        hello = worker_pb2.Hello()
        hello.CopyFrom(self._hello)
        hello.resume_handle = self._handle
        if self._drain is not None:
            hello.max_in_flight = 0
        return hello

    def _after_stream(self, stream: SessionStream, error: Optional[grpc.RpcError]) -> Optional[float]:
        """Decides what follows a finished stream: seconds to wait, or None to give up."""
        if error is None:
            self._logger.info("session stream ended by the server; reconnecting")
            return self._backoff.next_delay()
        failure = from_rpc_error(error)
        if stream.aborted and failure.grpc_code == grpc.StatusCode.CANCELLED:
            return self._backoff.next_delay()
        with self._cond:
            had_handle = bool(self._handle)
        if failure.code == "SESSION_EXPIRED" and had_handle:
            self._logger.warning("session expired; starting a new session")
            with self._cond:
                self._handle = ""
            return 0.0
        if failure.grpc_code in FATAL_STATUSES or failure.code in FATAL_REASONS:
            self._logger.error("the server refused the worker session: %s", failure)
            with self._cond:
                self._closing = True
                self._cond.notify_all()
            self._on_fatal(failure)
            return None
        delay = self._backoff.next_delay()
        self._logger.warning("session stream failed (%s); reconnecting in %.2fs", failure, delay)
        return delay

    def _detach(self, stream: SessionStream) -> None:
        stream.close()
        with self._cond:
            if self._welcomed is stream:
                self._welcomed = None
            if self._current is stream:
                self._current = None
            self._cond.notify_all()

    def _dispatch(self, stream: SessionStream, message: worker_pb2.ServerMessage) -> None:
        kind = message.WhichOneof("kind")
        if kind == "welcome":
            self._on_welcome(stream, message.welcome)
        elif kind == "batch":
            self._runner.assign(message.batch)
        elif kind == "acks":
            self._on_acks(message.acks)
        elif kind == "cancel":
            refs = [(ref.step_id, ref.attempt) for ref in message.cancel.steps]
            hit = self._runner.drop(refs, message.cancel.reason or "cancelled")
            self._logger.info("cancel received for %d step(s), %d running", len(refs), len(hit))
        elif kind == "drain":
            self._logger.info(
                "server draining (%s, grace %d ms); will reconnect when it closes the stream",
                message.drain.reason,
                message.drain.grace_ms,
            )

    def _on_acks(self, acks: worker_pb2.AckBatch) -> None:
        for ack in acks.acks:
            report = self._reports.ack(ack.report_id)
            if ack.status == worker_pb2.ACK_STATUS_DUPLICATE:
                self._logger.debug("report %d for step %s acknowledged DUPLICATE", ack.report_id, ack.step_id)
            elif ack.status == worker_pb2.ACK_STATUS_REJECTED:
                self._logger.warning(
                    "report %d for step %s attempt %d rejected: %s %s",
                    ack.report_id,
                    ack.step_id,
                    ack.attempt,
                    worker_pb2.RejectReason.Name(ack.reason),
                    ack.message,
                )
                self._runner.on_rejected(ack, report)

    def _on_welcome(self, stream: SessionStream, welcome: worker_pb2.Welcome) -> None:
        with self._cond:
            generation = (self._info.generation if self._info else 0) + 1
            if welcome.session_handle:
                self._handle = welcome.session_handle
            in_flight = tuple((ref.step_id, ref.attempt) for ref in welcome.in_flight)
            if welcome.resumed:
                self._runner.drop_all_except(set(in_flight), "the session no longer holds this step")
                self._report_lost(in_flight)
                resent = self._reports.resend_all()
            else:
                dropped = self._runner.drop_all_except(set(), "the previous session expired")
                resent = 0
                lost = self._reports.discard_all()
                self._runner.forget_batches()
                if generation > 1:
                    self._logger.warning(
                        "new session: abandoned %d running step(s) and %d unacknowledged report(s)",
                        len(dropped),
                        lost,
                    )
            self._runner.max_report_bytes = welcome.max_report_bytes
            self._heartbeat_s = (welcome.heartbeat_interval_ms or _DEFAULT_HEARTBEAT_S * 1000) / 1000
            self._next_heartbeat = time.monotonic() + self._heartbeat_s
            self._welcomed = stream
            self._info = SessionInfo(
                session_id=welcome.session_id,
                resumed=welcome.resumed,
                in_flight=in_flight,
                server_instance=welcome.server_instance,
                heartbeat_interval_ms=welcome.heartbeat_interval_ms,
                lease_ms=welcome.lease_ms,
                max_report_bytes=welcome.max_report_bytes,
                generation=generation,
            )
            info = self._info
            drain = self._drain
            listeners = list(self._listeners)
            self._cond.notify_all()
        self._backoff.reset()
        if drain is not None:
            stream.send(worker_pb2.WorkerMessage(drain=drain))
        self._logger.info(
            "session %s %s on %s (%d in flight, %d report(s) resent)",
            info.session_id,
            "resumed" if info.resumed else "started",
            info.server_instance or "server",
            len(in_flight),
            resent,
        )
        for listener in listeners:
            try:
                listener(info)
            except Exception:
                self._logger.exception("session listener failed")

    def _report_lost(self, in_flight: Tuple[Tuple[str, int], ...]) -> None:
        """Fails (retryably) leased steps this worker never received, instead of letting them time out."""
        held = self._runner.held_keys()
        reported = {(r.step_id, r.attempt) for r in self._reports.unacked_reports()}
        for step_id, attempt in in_flight:
            if (step_id, attempt) in held or (step_id, attempt) in reported:
                continue
            report = worker_pb2.StepReport(step_id=step_id, attempt=attempt)
            report.failed.error.CopyFrom(
                common_pb2.StepError(
                    error_class="AssignmentLost",
                    message="the assignment was lost in transit before the worker received it",
                    retryable=True,
                    retry_after_ms=0,
                    code="ASSIGNMENT_LOST",
                )
            )
            self._reports.add(report)

    # -- sender thread -----------------------------------------------------------------

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                if self._closing:  # the worker waited for its acks before closing
                    return
                if self._welcomed is None:
                    self._cond.wait(0.5)
                    continue
                heartbeat_at = self._next_heartbeat
            wait_s = min(0.5, max(0.0, heartbeat_at - time.monotonic()))
            if self._reports.wait_unsent(wait_s):
                time.sleep(REPORT_LINGER_S)
                self._flush()
            if time.monotonic() >= heartbeat_at:
                self._heartbeat()

    def _flush(self) -> None:
        # Under the session lock: a Welcome (which re-queues unacknowledged reports)
        # cannot slip between taking reports and choosing the stream they go to.
        with self._cond:
            stream = self._welcomed
            if stream is None:
                return
            for batch in self._reports.take(self._runner.max_report_bytes):
                stream.send(worker_pb2.WorkerMessage(reports=batch))

    def _heartbeat(self) -> None:
        beat = worker_pb2.Heartbeat(sent_at=_convert.now_timestamp())
        with self._cond:
            stream = self._welcomed
            if stream is None:
                return
            stream.send(worker_pb2.WorkerMessage(heartbeat=beat))
            self._next_heartbeat = time.monotonic() + self._heartbeat_s
