"""One WorkerService.Connect call: a request queue feeding gRPC, and its responses."""

from __future__ import annotations

import queue
import threading
from typing import Any, Iterator, Optional

from tasker._channel import Metadata
from tasker.v1 import worker_pb2, worker_pb2_grpc

_END = object()


class SessionStream:
    """A single bidirectional stream.

    gRPC consumes :meth:`_requests` on its own thread, so :meth:`send` never blocks
    the caller. :meth:`close` half-closes (the server then ends the stream);
    :meth:`abort` cancels it as a network fault would. Either way the request
    iterator ends, so gRPC's consumer thread does not linger.
    """

    def __init__(self, stub: worker_pb2_grpc.WorkerServiceStub, metadata: Metadata) -> None:
        self._stub = stub
        self._metadata = metadata
        self._queue: "queue.Queue[Any]" = queue.Queue()
        self._lock = threading.Lock()
        self._closed = False
        self._call: Optional[Any] = None
        self.aborted = False

    def _requests(self) -> Iterator[worker_pb2.WorkerMessage]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            yield item

    def open(self, hello: worker_pb2.Hello) -> Iterator[worker_pb2.ServerMessage]:
        """Starts the call with ``hello`` as its first message; returns the response iterator."""
        self._queue.put(worker_pb2.WorkerMessage(hello=hello))
        call = self._stub.Connect(self._requests(), metadata=self._metadata)
        with self._lock:
            self._call = call
            aborted = self.aborted
        if aborted:
            call.cancel()
        return call  # type: ignore[no-any-return]

    def send(self, message: worker_pb2.WorkerMessage) -> bool:
        """Queues a message; returns False (dropping it) once the stream is closed."""
        with self._lock:
            if self._closed:
                return False
            self._queue.put(message)
            return True

    def close(self) -> None:
        """Half-closes: no more messages; the server finishes and ends the stream."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._queue.put(_END)

    def abort(self) -> None:
        """Cancels the call immediately, like a dropped connection."""
        with self._lock:
            self.aborted = True
            call = self._call
            if not self._closed:
                self._closed = True
                self._queue.put(_END)
        if call is not None:
            call.cancel()

    @property
    def closed(self) -> bool:
        """True once close() or abort() was called."""
        with self._lock:
            return self._closed
