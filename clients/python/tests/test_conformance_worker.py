"""The conformance worker process: stdout events, handler catalog, SIGTERM stop.

Runs ``conformance/worker.py`` as a separate process (as the e2e suite does)
against the scripted WorkerService peer.
"""

import json
import os
import queue
import signal
import subprocess
import sys
import threading

import pytest

from fake_server import FakeWorkerService, assignment, batch, start_server
from tasker.v1 import common_pb2, worker_pb2, worker_pb2_grpc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFIX = "conformance.python"


class Proc:
    def __init__(self, address: str) -> None:
        env = dict(os.environ)
        env.update(
            PYTHONPATH=ROOT,
            PYTHONDONTWRITEBYTECODE="1",
            TASKER_ADDRESS=address,
            TASKER_TOKEN="worker-token",
            TASKER_WORKER_NAME="conformance-test",
            TASKER_HANDLER_PREFIX=PREFIX,
            TASKER_CONCURRENCY="3",
        )
        self.popen = subprocess.Popen(
            [sys.executable, os.path.join(ROOT, "conformance", "worker.py")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.lines: "queue.Queue[dict]" = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.popen.stdout:
            self.lines.put(json.loads(line))

    def next_event(self, timeout: float = 15.0) -> dict:
        return self.lines.get(timeout=timeout)


@pytest.fixture()
def setup():
    fake = FakeWorkerService()
    server, address = start_server(fake, worker_pb2_grpc.add_WorkerServiceServicer_to_server)
    proc = Proc(address)
    yield fake, proc
    if proc.popen.poll() is None:
        proc.popen.kill()
    proc.popen.wait(10)
    server.stop(0)


def results(fake):
    return {r.step_id: json.loads(r.completed.result_json) for r in fake.final_reports() if r.HasField("completed")}


def test_catalog_events_and_graceful_sigterm(setup):
    fake, proc = setup
    ready = proc.next_event()
    assert ready["event"] == "ready" and ready["session_id"] == "session-1"
    stream = fake.stream(0)
    assert stream.hello.language == "python" and stream.hello.max_in_flight == 3
    assert {h.rsplit(".", 1)[1] for h in stream.hello.handlers} == {
        "echo", "flaky", "permanent", "raise", "progress", "wait_for_cancel", "concurrency", "interrupt", "duplicate",
    }
    h = lambda name: f"{PREFIX}.{name}"  # noqa: E731
    stream.push(batch("b1",
                      assignment("e1", h("echo"), step_name="d", ancestor_results={"b": {"value": 1}, "a": {"value": 2}}),
                      assignment("f1", h("flaky"), handler_config={"fail_times": 1, "retry_after_ms": 20}),
                      assignment("r1", h("raise"))))
    fake.wait_for(lambda: len(fake.final_reports()) == 3)
    assert results(fake)["e1"] == {"step": "d", "language": "python", "attempt": 1, "ancestors": ["a", "b"], "value": 4}
    failures = {r.step_id: r.failed.error for r in fake.final_reports() if r.HasField("failed")}
    assert failures["f1"].retryable and failures["f1"].retry_after_ms == 20
    assert (failures["r1"].error_class, failures["r1"].message) == ("ValueError", "boom")
    assert failures["r1"].backtrace

    stream.push(batch("b2",
                      assignment("p1", h("permanent")),
                      assignment("g1", h("progress"), handler_config={"count": 3}),
                      assignment("w1", h("wait_for_cancel"))))
    fake.wait_for(lambda: any(r.step_id == "w1" and r.HasField("progress") for r in fake.reports()))
    stream.push(worker_pb2.ServerMessage(cancel=worker_pb2.Cancel(steps=[common_pb2.StepRef(step_id="w1", attempt=1)])))
    assert proc.next_event() == {"event": "cancelled", "step_id": "w1"}
    fake.wait_for(lambda: len(fake.final_reports()) == 5)
    failures = {r.step_id: r.failed.error for r in fake.final_reports() if r.HasField("failed")}
    assert not failures["p1"].retryable and failures["p1"].code == "CONFORMANCE_PERMANENT"
    assert failures["p1"].message == "permanent failure requested"
    assert results(fake)["g1"] == {"count": 3}

    fake.in_flight = [("i1", 1)]
    stream.push(batch("b3", assignment("i1", h("interrupt"))))
    resumed = proc.next_event()
    assert resumed == {"event": "resumed", "session_id": "session-1", "in_flight": 1}
    fake.wait_for(lambda: "i1" in results(fake))
    assert results(fake)["i1"] == {"resumed": True}

    second = fake.stream(1)
    second.push(batch("b4", assignment("d1", h("duplicate")),
                      *[assignment(f"c{i}", h("concurrency"), handler_config={"sleep_ms": 200}) for i in range(2)]))
    fake.wait_for(lambda: len([r for r in fake.final_reports(second) if r.step_id == "d1"]) == 2)
    fake.wait_for(lambda: {"c0", "c1"} <= set(results(fake)))
    assert max(results(fake)[c]["peak"] for c in ("c0", "c1")) <= 3

    proc.popen.send_signal(signal.SIGTERM)
    assert proc.next_event() == {"event": "stopped"}
    assert proc.popen.wait(15) == 0
    assert fake.messages("drain", second)[0].drain.reason == "SIGTERM"
