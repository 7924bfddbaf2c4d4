"""A scripted WorkerService peer on a real gRPC socket (127.0.0.1:0).

It speaks the session protocol the way the contract describes it, with knobs a
test can turn (withhold acks, expire the session, refuse the token), and records
every WorkerMessage it receives so tests assert what went over the wire.
"""

from __future__ import annotations

import json
import queue
import secrets
import threading
import time
from concurrent import futures
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import grpc

from tasker.v1 import common_pb2, worker_pb2, worker_pb2_grpc

_CLOSE = object()


class FakeStream:
    """One Connect call as the server sees it."""

    def __init__(self, hello: worker_pb2.Hello, metadata: Dict[str, str]) -> None:
        self.hello = hello
        self.metadata = metadata
        self.received: List[worker_pb2.WorkerMessage] = []
        self.outbound: "queue.Queue[Any]" = queue.Queue()
        self.ended = threading.Event()
        self.session_id = ""

    def push(self, message: worker_pb2.ServerMessage) -> None:
        self.outbound.put(message)

    def close(self) -> None:
        self.outbound.put(_CLOSE)


class FakeWorkerService(worker_pb2_grpc.WorkerServiceServicer):
    """Scripted server side of WorkerService.Connect."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.streams: List[FakeStream] = []
        self.auto_ack = True
        self.heartbeat_interval_ms = 5000
        self.max_report_bytes = 1024 * 1024
        self.refuse: Optional[Tuple[grpc.StatusCode, str]] = None
        self.expire_handles = False
        self.in_flight: List[Tuple[str, int]] = []
        self.applied: Set[int] = set()
        self.reject: Dict[int, int] = {}
        self._handles: Dict[str, str] = {}

    # -- servicer --------------------------------------------------------------------

    def Connect(self, request_iterator: Any, context: grpc.ServicerContext) -> Any:
        first = next(request_iterator)
        metadata = {k: v for k, v in context.invocation_metadata()}
        stream = FakeStream(first.hello, metadata)
        handle = first.hello.resume_handle
        resumed = bool(handle) and handle in self._handles and not self.expire_handles
        if self.refuse is not None or (handle and not resumed):
            with self.cond:
                self.streams.append(stream)
                self.cond.notify_all()
            if self.refuse is not None:
                self._abort(context, self.refuse[0], self.refuse[1])
            self._abort(context, grpc.StatusCode.FAILED_PRECONDITION, "SESSION_EXPIRED")
        if not resumed:
            handle = secrets.token_hex(16)
            self._handles[handle] = f"session-{len(self._handles) + 1}"
        stream.session_id = self._handles[handle]
        welcome = worker_pb2.Welcome(
            session_id=stream.session_id,
            session_handle=handle,
            heartbeat_interval_ms=self.heartbeat_interval_ms,
            lease_ms=30000,
            resumed=resumed,
            in_flight=[common_pb2.StepRef(step_id=s, attempt=a) for s, a in self.in_flight] if resumed else [],
            server_instance="fake",
            max_report_bytes=self.max_report_bytes,
        )
        stream.push(worker_pb2.ServerMessage(welcome=welcome))
        with self.cond:  # registered only now, so a test cannot push before the Welcome
            self.streams.append(stream)
            self.cond.notify_all()
        reader = threading.Thread(target=self._read, args=(stream, request_iterator), daemon=True)
        reader.start()
        while True:
            item = stream.outbound.get()
            if item is _CLOSE or not context.is_active():
                break
            yield item
        stream.ended.set()

    def _abort(self, context: grpc.ServicerContext, code: grpc.StatusCode, reason: str) -> None:
        context.set_trailing_metadata(
            (
                ("tasker-error-code", reason),
                ("tasker-error-details-bin", json.dumps({"reason": reason}).encode()),
            )
        )
        context.abort(code, f"refused: {reason}")

    def _read(self, stream: FakeStream, request_iterator: Any) -> None:
        try:
            for message in request_iterator:
                with self.cond:
                    stream.received.append(message)
                    self.cond.notify_all()
                if message.WhichOneof("kind") == "reports" and self.auto_ack:
                    stream.push(self.acks_for(message.reports.reports))
        except grpc.RpcError:
            pass
        finally:
            stream.close()

    def acks_for(self, reports: Any) -> worker_pb2.ServerMessage:
        acks = []
        with self.cond:
            for r in reports:
                if r.report_id in self.reject:
                    status = worker_pb2.ACK_STATUS_REJECTED
                    reason = self.reject[r.report_id]
                elif r.report_id in self.applied:
                    status, reason = worker_pb2.ACK_STATUS_DUPLICATE, 0
                else:
                    status, reason = worker_pb2.ACK_STATUS_ACCEPTED, 0
                    self.applied.add(r.report_id)
                acks.append(
                    worker_pb2.ResultAck(
                        report_id=r.report_id, step_id=r.step_id, attempt=r.attempt, status=status, reason=reason
                    )
                )
        return worker_pb2.ServerMessage(acks=worker_pb2.AckBatch(acks=acks))

    # -- test helpers ------------------------------------------------------------------

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError("condition not reached in time")
                self.cond.wait(min(remaining, 0.05))

    def stream(self, index: int = -1, timeout: float = 10.0) -> FakeStream:
        self.wait_for(lambda: len(self.streams) > (index if index >= 0 else 0), timeout)
        return self.streams[index]

    def reports(self, stream: Optional[FakeStream] = None) -> List[worker_pb2.StepReport]:
        streams = [stream] if stream else list(self.streams)
        with self.cond:
            return [r for s in streams for m in s.received if m.WhichOneof("kind") == "reports" for r in m.reports.reports]

    def messages(self, kind: str, stream: Optional[FakeStream] = None) -> List[worker_pb2.WorkerMessage]:
        streams = [stream] if stream else list(self.streams)
        with self.cond:
            return [m for s in streams for m in s.received if m.WhichOneof("kind") == kind]

    def final_reports(self, stream: Optional[FakeStream] = None) -> List[worker_pb2.StepReport]:
        return [r for r in self.reports(stream) if r.WhichOneof("kind") in ("completed", "failed")]


def assignment(step_id: str, handler: str, attempt: int = 1, **json_fields: Any) -> worker_pb2.StepAssignment:
    """A StepAssignment with JSON fields given as Python values."""
    return worker_pb2.StepAssignment(
        step_id=step_id,
        attempt=attempt,
        task_id="task-1",
        template=common_pb2.TemplateRef(namespace="ns", name="tpl", version="1.0.0"),
        step_name=json_fields.pop("step_name", step_id),
        handler=handler,
        handler_config_json=json.dumps(json_fields.pop("handler_config", {})).encode(),
        context_json=json.dumps(json_fields.pop("context", {})).encode(),
        ancestor_results_json=json.dumps(json_fields.pop("ancestor_results", {})).encode(),
        max_attempts=3,
        timeout_ms=60000,
    )


def batch(batch_id: str, *steps: worker_pb2.StepAssignment) -> worker_pb2.ServerMessage:
    return worker_pb2.ServerMessage(batch=worker_pb2.StepBatch(batch_id=batch_id, steps=list(steps)))


def start_server(servicer: Any, add: Callable[[Any, grpc.Server], None]) -> Tuple[grpc.Server, str]:
    """Starts a gRPC server on 127.0.0.1:0 with ``servicer``; returns it and its address."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    add(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, f"127.0.0.1:{port}"
