"""Python conformance worker (see clients/conformance/README.md).

Run from the repository root:

    PYTHONPATH=clients/python /usr/bin/python3 clients/python/conformance/worker.py

Configured only by environment variables (TASKER_ADDRESS, TASKER_TOKEN,
TASKER_WORKER_NAME, TASKER_HANDLER_PREFIX, TASKER_CONCURRENCY). Writes one JSON
object per line on stdout for each observable event; logs go to stderr.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from typing import Any, Dict, List

from tasker import PermanentError, RetryableError, SessionInfo, Step, StepContext, Worker

LANGUAGE = "python"
WAIT_FOR_CANCEL_S = 30.0

_stdout_lock = threading.Lock()


def emit(event: Dict[str, Any]) -> None:
    """Writes one event line on stdout (the only thing that goes there)."""
    line = json.dumps(event, separators=(",", ":"))
    with _stdout_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


class ConcurrencyProbe:
    """Counts running ``concurrency`` handlers; each sees the highest count during its run."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: List[List[int]] = []  # one [peak] cell per running handler

    def enter(self) -> List[int]:
        with self._lock:
            cell = [0]
            self._running.append(cell)
            count = len(self._running)
            for other in self._running:
                other[0] = max(other[0], count)
            return cell

    def leave(self, cell: List[int]) -> int:
        with self._lock:
            self._running.remove(cell)
            return cell[0]


def build_worker() -> Worker:
    """The worker with the conformance handler catalog registered under the prefix."""
    prefix = os.environ.get("TASKER_HANDLER_PREFIX", f"conformance.{LANGUAGE}")
    worker = Worker(
        os.environ.get("TASKER_ADDRESS", "127.0.0.1:50051"),
        token=os.environ.get("TASKER_TOKEN") or None,
        name=os.environ.get("TASKER_WORKER_NAME") or f"conformance-{LANGUAGE}",
        concurrency=int(os.environ.get("TASKER_CONCURRENCY") or "4"),
        labels={"suite": "conformance", "language": LANGUAGE},
    )
    probe = ConcurrencyProbe()
    ready_sent = threading.Event()

    @worker.on_session
    def announce(info: SessionInfo) -> None:
        if info.resumed:
            emit({"event": "resumed", "session_id": info.session_id, "in_flight": len(info.in_flight)})
        elif not ready_sent.is_set():
            ready_sent.set()
            emit({"event": "ready", "session_id": info.session_id})

    def name(short: str) -> str:
        return f"{prefix}.{short}"

    @worker.handler(name("echo"))
    def echo(step: Step, ctx: StepContext) -> Any:
        ancestors = step.ancestor_results
        total = sum(
            r.get("value", 0) for r in ancestors.values() if isinstance(r, dict) and isinstance(r.get("value"), (int, float))
        )
        return {
            "step": step.step_name,
            "language": LANGUAGE,
            "attempt": step.attempt,
            "ancestors": sorted(ancestors),
            "value": 1 + total,
        }

    @worker.handler(name("flaky"))
    def flaky(step: Step, ctx: StepContext) -> Any:
        cfg = step.handler_config
        if step.attempt <= int(cfg.get("fail_times", 0)):
            retry_after = cfg.get("retry_after_ms")
            raise RetryableError(
                f"flaky failure on attempt {step.attempt}",
                retry_after_ms=int(retry_after) if retry_after is not None else None,
            )
        return {"attempt": step.attempt}

    @worker.handler(name("permanent"))
    def permanent(step: Step, ctx: StepContext) -> Any:
        raise PermanentError("permanent failure requested", code="CONFORMANCE_PERMANENT")

    @worker.handler(name("raise"))
    def raise_(step: Step, ctx: StepContext) -> Any:
        raise ValueError("boom")

    @worker.handler(name("progress"))
    def progress(step: Step, ctx: StepContext) -> Any:
        count = int(step.handler_config.get("count", 0))
        for i in range(1, count + 1):
            ctx.progress({"i": i})
        return {"count": count}

    @worker.handler(name("wait_for_cancel"))
    def wait_for_cancel(step: Step, ctx: StepContext) -> Any:
        ctx.progress({"waiting": True})
        if ctx.wait_cancelled(WAIT_FOR_CANCEL_S):
            emit({"event": "cancelled", "step_id": step.step_id})
        return {"cancelled": ctx.cancelled}

    @worker.handler(name("concurrency"))
    def concurrency(step: Step, ctx: StepContext) -> Any:
        cell = probe.enter()
        try:
            ctx.wait_cancelled(float(step.handler_config.get("sleep_ms", 0)) / 1000.0)
        finally:
            peak = probe.leave(cell)
        return {"peak": peak}

    @worker.handler(name("interrupt"))
    def interrupt(step: Step, ctx: StepContext) -> Any:
        if step.attempt != 1:
            return {"resumed": False}
        current = worker.session
        worker.interrupt_connection()
        info = worker.wait_for_session(current.generation if current else 0, timeout=WAIT_FOR_CANCEL_S)
        return {"resumed": bool(info and info.resumed)}

    @worker.handler(name("duplicate"))
    def duplicate(step: Step, ctx: StepContext) -> Any:
        worker.debug_duplicate_next_report()
        return {"ok": True}

    return worker


def main() -> int:
    logging.basicConfig(
        stream=sys.stderr,
        level=os.environ.get("TASKER_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    worker = build_worker()
    worker.run()
    emit({"event": "stopped"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
