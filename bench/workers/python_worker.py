"""A no-op Python worker for the benchmarks (the Python SDK's Worker).

    PYTHONPATH=clients/python /usr/bin/python3 bench/workers/python_worker.py

Environment: BENCH_ADDRESS (host:port), BENCH_HANDLERS (comma-separated),
BENCH_CONCURRENCY (default 64), BENCH_NAME. Prints {"event":"ready"} once the
session is welcomed and {"event":"stopped",...} after a graceful stop on SIGTERM.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from typing import Any

from tasker import SessionInfo, Step, StepContext, Worker


def main() -> int:
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    worker = Worker(
        os.environ.get("BENCH_ADDRESS", "127.0.0.1:50051"),
        name=os.environ.get("BENCH_NAME") or f"bench-python-{os.getpid()}",
        concurrency=int(os.environ.get("BENCH_CONCURRENCY") or "64"),
        shutdown_grace=10.0,
    )
    lock = threading.Lock()
    handled = [0]

    def noop(step: Step, ctx: StepContext) -> Any:
        with lock:
            handled[0] += 1
        return None

    for name in filter(None, os.environ.get("BENCH_HANDLERS", "bench.noop").split(",")):
        worker.register(name, noop)

    announced = threading.Event()

    @worker.on_session
    def ready(info: SessionInfo) -> None:
        if not announced.is_set():
            announced.set()
            sys.stdout.write(json.dumps({"event": "ready", "pid": os.getpid()}) + "\n")
            sys.stdout.flush()

    worker.run()
    sys.stdout.write(json.dumps({"event": "stopped", "handled": handled[0]}) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
