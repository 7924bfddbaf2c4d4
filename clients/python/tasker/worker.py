"""The Tasker worker: register handlers, run them for the server, stop gracefully.

Example::

    from tasker import Worker, PermanentError

    worker = Worker("localhost:50051", token="...", concurrency=8)

    @worker.handler("payments.charge")
    def charge(step, ctx):
        ctx.progress({"stage": "authorizing"})
        if step.context["amount"] <= 0:
            raise PermanentError("amount must be positive", code="BAD_AMOUNT")
        return {"charged": step.context["amount"]}

    worker.run()   # blocks; SIGTERM/SIGINT drain and stop it

Threads: one connection thread reads the session stream, one sender thread
writes reports and heartbeats, and a pool of ``concurrency`` threads runs
handlers, so a busy handler never silences the session.
"""

from __future__ import annotations

import logging
import signal
import os
import socket
import threading
import time
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
    Union,
    overload,
)

import grpc

from tasker import __version__
from tasker._channel import auth_metadata, make_channel
from tasker._reports import ReportBuffer
from tasker._runner import StepFn, StepRunner, normalize_handler
from tasker._session import Session, SessionInfo
from tasker._templates import TemplateInput, template_from
from tasker.errors import TaskerError
from tasker.handler import Handler
from tasker.v1 import worker_pb2, worker_pb2_grpc

__all__ = ["Worker", "SessionInfo"]

F = TypeVar("F", bound=Callable[..., Any])


def _default_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class Worker:
    """A worker process's one session with Tasker.

    :param address: ``host:port`` of the Tasker server.
    :param token: bearer token with the ``worker`` role (None when auth is disabled).
    :param credentials: TLS credentials (``grpc.ssl_channel_credentials(...)``);
        None = plaintext.
    :param name: name shown in ListWorkers (default ``<hostname>-<pid>``).
    :param concurrency: steps run at once; also the credit the worker advertises.
    :param namespaces: only take steps of these namespaces (empty = all the token covers).
    :param labels: free-form labels shown in ListWorkers (default ``{"host": hostname}``).
    :param logger: logger to use (default ``logging.getLogger("tasker.worker")``).
    :param templates: templates to register when connecting (TaskTemplate or dicts).
    :param shutdown_grace: seconds :meth:`run` waits for in-flight steps on SIGTERM.
    :param channel_options: extra gRPC channel options.
    """

    def __init__(
        self,
        address: str,
        token: Optional[str] = None,
        credentials: Optional[grpc.ChannelCredentials] = None,
        *,
        name: Optional[str] = None,
        concurrency: int = 10,
        namespaces: Sequence[str] = (),
        labels: Optional[Mapping[str, str]] = None,
        logger: Optional[logging.Logger] = None,
        templates: Iterable[TemplateInput] = (),
        shutdown_grace: float = 30.0,
        channel_options: Optional[Sequence[Tuple[str, Any]]] = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.address = address
        self.name = name or _default_name()
        self.concurrency = concurrency
        self.namespaces = tuple(namespaces)
        self.labels: Dict[str, str] = dict(labels if labels is not None else {"host": socket.gethostname()})
        self.shutdown_grace = shutdown_grace
        self.logger = logger or logging.getLogger("tasker.worker")
        self._templates = [template_from(t) for t in templates]
        self._token = token
        self._credentials = credentials
        self._channel_options = channel_options
        self._handlers: Dict[str, StepFn] = {}
        self._listeners: List[Callable[[SessionInfo], None]] = []
        self._reports = ReportBuffer()
        self._runner: Optional[StepRunner] = None
        self._session: Optional[Session] = None
        self._channel: Optional[grpc.Channel] = None
        self._lock = threading.Lock()
        self._started = False
        self._shutdown_started = False
        self._run_active = False
        self._stop_requested = threading.Event()
        self._done = threading.Event()
        self._stop_grace: Optional[float] = None
        self._stop_reason = "stop requested"
        self._signal_reason: Optional[str] = None
        self._force = False
        self._fatal: Optional[TaskerError] = None

    # -- registration --------------------------------------------------------------

    @overload
    def handler(self, name: F) -> F: ...

    @overload
    def handler(self, name: Optional[str] = None) -> Callable[[F], F]: ...

    def handler(self, name: Union[str, F, None] = None) -> Any:
        """Decorator registering a step handler under ``name``.

        ``@worker.handler("payments.charge")``; bare ``@worker.handler`` uses the
        function's ``module.qualname``. The function is returned unchanged.
        """
        if callable(name):
            self.register(f"{name.__module__}.{name.__qualname__}", name)
            return name
        explicit: Optional[str] = name

        def decorate(fn: F) -> F:
            self.register(explicit or f"{fn.__module__}.{fn.__qualname__}", fn)
            return fn

        return decorate

    def register(self, name: str, fn: Handler) -> None:
        """Registers ``fn(step, ctx)`` (or ``fn(step)``) as the handler called ``name``."""
        with self._lock:
            if self._started:
                raise RuntimeError("register handlers before starting the worker")
            if name in self._handlers:
                raise ValueError(f"handler {name!r} is already registered")
            self._handlers[name] = normalize_handler(fn)

    @property
    def handler_names(self) -> List[str]:
        """Names of the registered handlers, sorted."""
        return sorted(self._handlers)

    def on_session(self, listener: Callable[[SessionInfo], None]) -> Callable[[SessionInfo], None]:
        """Decorator: ``listener(info)`` runs after every Welcome (new or resumed session)."""
        with self._lock:
            self._listeners.append(listener)
            if self._session is not None:
                self._session.add_listener(listener)
        return listener

    # -- observing -----------------------------------------------------------------

    @property
    def session(self) -> Optional[SessionInfo]:
        """The latest Welcome's information, or None before the first."""
        return self._session.info if self._session else None

    def wait_for_session(
        self, after_generation: int = 0, timeout: Optional[float] = None
    ) -> Optional[SessionInfo]:
        """Blocks until a Welcome newer than ``after_generation`` arrives; None on timeout."""
        if self._session is None:
            raise RuntimeError("the worker is not started")
        return self._session.wait_for_welcome(after_generation, timeout)

    @property
    def connected(self) -> bool:
        """True while a stream is attached and welcomed by the server."""
        return self._session.connected if self._session else False

    @property
    def in_flight(self) -> int:
        """Number of steps whose handler is running."""
        return self._runner.running_count() if self._runner else 0

    @property
    def unacknowledged_reports(self) -> int:
        """Reports sent (or waiting to be sent) and not yet acknowledged by the server."""
        return self._reports.unacked_count()

    @property
    def error(self) -> Optional[TaskerError]:
        """The server error that stopped the worker, if any."""
        return self._fatal

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Connects and starts taking steps in background threads; returns at once."""
        with self._lock:
            if self._started:
                raise RuntimeError("a Worker can only be started once")
            if not self._handlers:
                raise RuntimeError("register at least one handler before starting the worker")
            self._started = True
            self._channel = make_channel(self.address, self._credentials, self._channel_options)
            self._runner = StepRunner(self._handlers, self._reports, self.concurrency, self.logger)
            self._session = Session(
                stub=worker_pb2_grpc.WorkerServiceStub(self._channel),
                metadata=auth_metadata(self._token),
                hello=self._hello(),
                runner=self._runner,
                reports=self._reports,
                logger=self.logger,
                on_fatal=self._on_fatal,
            )
            for listener in self._listeners:
                self._session.add_listener(listener)
        self.logger.info(
            "worker %s connecting to %s with %d handler(s), concurrency %d",
            self.name,
            self.address,
            len(self._handlers),
            self.concurrency,
        )
        self._session.start()

    def _hello(self) -> worker_pb2.Hello:
        return worker_pb2.Hello(
            worker_name=self.name,
            language="python",
            sdk_version=__version__,
            handlers=sorted(self._handlers),
            namespaces=list(self.namespaces),
            max_in_flight=self.concurrency,
            labels=self.labels,
            templates=self._templates,
        )

    def run(self, install_signal_handlers: bool = True) -> None:
        """Starts the worker and blocks until it stops.

        In the main thread SIGTERM and SIGINT trigger a graceful stop: Drain, let
        in-flight steps finish (up to ``shutdown_grace`` seconds), wait for their
        reports to be acknowledged, close. A second signal stops at once. Raises
        the :class:`TaskerError` that stopped the worker, if the server refused it.
        """
        self._run_active = True
        previous: Dict[signal.Signals, Any] = {}
        if install_signal_handlers and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, self._on_signal)
        try:
            self.start()
            # Polling keeps the signal handler free of locks (it may interrupt a lock holder).
            while self._signal_reason is None and not self._stop_requested.wait(0.25):
                pass
            if self._signal_reason is not None:
                self._stop_reason = self._signal_reason
            self._shutdown()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._run_active = False
        if self._fatal is not None:
            raise self._fatal

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if self._signal_reason is None:
            self._signal_reason = signal.Signals(signum).name
        else:
            self._force = True

    def stop(self, grace: Optional[float] = None, wait: bool = True) -> None:
        """Stops gracefully: Drain, finish in-flight steps within ``grace`` seconds
        (default ``shutdown_grace``), wait for acks, close. Safe from any thread; from
        inside a handler it never waits (the handler's own step must finish first).
        """
        self._stop_grace = grace
        self._stop_requested.set()
        if not self._started:
            self._done.set()
            return
        if self._runner is not None and self._runner.in_handler_thread():
            wait = False
        if self._run_active and not wait:
            return
        if wait:
            self._shutdown()
        else:
            threading.Thread(target=self._shutdown, name="tasker-stop", daemon=True).start()

    def _on_fatal(self, error: TaskerError) -> None:
        self._fatal = error
        self._force = True
        self._stop_reason = f"fatal: {error.code}"
        self._stop_requested.set()
        if not self._run_active:
            threading.Thread(target=self._shutdown, name="tasker-stop", daemon=True).start()

    def _shutdown(self) -> None:
        with self._lock:
            first = not self._shutdown_started
            self._shutdown_started = True
        if not first:
            self._done.wait()
            return
        try:
            self._graceful_stop()
        finally:
            self._done.set()

    def _graceful_stop(self) -> None:
        assert self._session is not None and self._runner is not None
        grace = self.shutdown_grace if self._stop_grace is None else self._stop_grace
        deadline = time.monotonic() + max(0.0, grace)
        self.logger.info("worker stopping (%s): draining, grace %.1fs", self._stop_reason, grace)
        self._session.drain(self._stop_reason, int(grace * 1000))
        while not self._runner.wait_idle(0.2):
            if self._force or time.monotonic() >= deadline:
                count = self._runner.cancel_all("worker stopping")
                self.logger.warning("grace period over: cancelled %d running step(s)", count)
                break
        while not self._reports.wait_all_acked(0.2):
            if self._force or time.monotonic() >= deadline:
                break
        left = self._reports.unacked_count()
        if left:
            self.logger.warning("stopping with %d unacknowledged report(s)", left)
        self._session.close(timeout=2.0)
        self._runner.close()
        if self._channel is not None:
            self._channel.close()
        self.logger.info("worker stopped")

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Blocks until the worker has stopped; returns False on timeout."""
        return self._done.wait(timeout)

    # -- testing switches ------------------------------------------------------------

    def interrupt_connection(self) -> None:
        """Drops the session stream as a network fault would.

        The worker reconnects with its session handle, keeps its in-flight steps
        and resends unacknowledged reports. Meant for tests and chaos drills.
        """
        if self._session is not None:
            self._session.interrupt()

    def debug_duplicate_next_report(self) -> None:
        """Test switch: the next report is sent twice with the same report_id.

        Called from a handler it applies to that step's next report (typically
        its completion); elsewhere to the next report of any step. The server
        must acknowledge the second copy DUPLICATE with no second effect.
        """
        if self._runner is None:
            raise RuntimeError("the worker is not started")
        self._runner.arm_duplicate()
