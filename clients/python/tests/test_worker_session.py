"""The worker's session protocol against a scripted WorkerService peer on a real socket."""

import json
import threading

import grpc
import pytest

from fake_server import FakeWorkerService, assignment, batch, start_server
from tasker import PermanentError, UnauthenticatedError, Worker
from tasker.v1 import common_pb2, worker_pb2, worker_pb2_grpc


@pytest.fixture()
def fake():
    service = FakeWorkerService()
    server, address = start_server(service, worker_pb2_grpc.add_WorkerServiceServicer_to_server)
    service.address = address
    yield service
    server.stop(0)


@pytest.fixture()
def make_worker(fake):
    workers = []

    def make(**kwargs):
        kwargs.setdefault("concurrency", 4)
        kwargs.setdefault("name", "test-worker")
        worker = Worker(fake.address, token="worker-token", **kwargs)
        workers.append(worker)
        return worker

    yield make
    for worker in workers:
        worker.stop(grace=0)


def final(fake, step_id, stream=None):
    return [r for r in fake.final_reports(stream) if r.step_id == step_id]


def test_hello_announces_the_worker_and_its_credit(fake, make_worker):
    worker = make_worker(concurrency=3, namespaces=["payments"], labels={"host": "h1"})
    worker.register("a.one", lambda step: None)
    worker.register("a.two", lambda step, ctx: None)
    worker.start()
    stream = fake.stream(0)
    hello = stream.hello
    assert (hello.worker_name, hello.language, hello.max_in_flight) == ("test-worker", "python", 3)
    assert list(hello.handlers) == ["a.one", "a.two"]
    assert list(hello.namespaces) == ["payments"]
    assert dict(hello.labels) == {"host": "h1"}
    assert hello.resume_handle == ""
    assert stream.metadata["authorization"] == "Bearer worker-token"
    info = worker.wait_for_session(0, timeout=10)
    assert info.session_id == "session-1" and not info.resumed


def test_batch_runs_handlers_and_reports_started_completed_and_batch_completed(fake, make_worker):
    worker = make_worker()
    seen = []

    @worker.handler("math.add")
    def add(step, ctx):
        seen.append((step.step_name, step.context, step.handler_config, step.ancestor_results))
        return {"sum": step.context["a"] + step.handler_config["b"]}

    worker.start()
    stream = fake.stream(0)
    stream.push(batch("b1",
                      assignment("s1", "math.add", context={"a": 1}, handler_config={"b": 2}, ancestor_results={"p": 1}),
                      assignment("s2", "math.add", context={"a": 5}, handler_config={"b": 5})))
    fake.wait_for(lambda: len(fake.final_reports()) == 2 and fake.messages("reports")
                  and any(m.reports.batches for m in fake.messages("reports")))
    results = {r.step_id: json.loads(r.completed.result_json) for r in fake.final_reports()}
    assert results == {"s1": {"sum": 3}, "s2": {"sum": 10}}
    kinds = [(r.step_id, r.WhichOneof("kind")) for r in fake.reports()]
    for step_id in ("s1", "s2"):
        assert kinds.index((step_id, "started")) < kinds.index((step_id, "completed"))
    (done,) = [c for m in fake.messages("reports") for c in m.reports.batches]
    assert (done.batch_id, done.completed, done.failed) == ("b1", 2, 0)
    assert ("s1", {"a": 1}, {"b": 2}, {"p": 1}) in seen
    fake.wait_for(lambda: worker.unacknowledged_reports == 0)


def test_handler_failures_are_reported_as_step_failed(fake, make_worker):
    worker = make_worker()
    worker.register("boom", lambda step: (_ for _ in ()).throw(ValueError("boom")))

    @worker.handler("perm")
    def perm(step, ctx):
        raise PermanentError("permanent failure requested", code="CONFORMANCE_PERMANENT")

    worker.start()
    fake.stream(0).push(batch("b1", assignment("s1", "boom"), assignment("s2", "perm"), assignment("s3", "unknown")))
    fake.wait_for(lambda: len(fake.final_reports()) == 3)
    errors = {r.step_id: r.failed.error for r in fake.final_reports()}
    assert errors["s1"].error_class == "ValueError" and errors["s1"].message == "boom"
    assert errors["s1"].retryable and errors["s1"].backtrace
    assert not errors["s2"].retryable and errors["s2"].code == "CONFORMANCE_PERMANENT"
    assert errors["s3"].code == "HANDLER_NOT_FOUND" and not errors["s3"].retryable
    fake.wait_for(lambda: any(c.failed == 3 for m in fake.messages("reports") for c in m.reports.batches))


def test_progress_reports_have_increasing_sequence_numbers(fake, make_worker):
    worker = make_worker()

    @worker.handler("prog")
    def prog(step, ctx):
        for i in range(1, 4):
            ctx.progress({"i": i})
        return {"count": 3}

    worker.start()
    fake.stream(0).push(batch("b1", assignment("s1", "prog")))
    fake.wait_for(lambda: len(fake.final_reports()) == 1)
    progress = [r.progress for r in fake.reports() if r.WhichOneof("kind") == "progress"]
    assert [p.seq for p in progress] == [1, 2, 3]
    assert [json.loads(p.payload_json) for p in progress] == [{"i": 1}, {"i": 2}, {"i": 3}]


def test_unacked_reports_are_resent_with_the_same_ids_after_an_interrupted_stream(fake, make_worker):
    fake.auto_ack = False
    worker = make_worker()
    worker.register("quick", lambda step: {"ok": True})
    worker.start()
    first = fake.stream(0)
    first.push(batch("b1", assignment("s1", "quick")))
    fake.wait_for(lambda: len(final(fake, "s1", first)) == 1)
    sent_ids = sorted(r.report_id for r in fake.reports(first))
    handle = first.hello.resume_handle
    worker.interrupt_connection()
    second = fake.stream(1)
    assert second.hello.resume_handle != "" and second.hello.resume_handle != handle
    fake.wait_for(lambda: len(final(fake, "s1", second)) == 1)
    assert sorted(r.report_id for r in fake.reports(second)) == sent_ids
    assert worker.wait_for_session(1, timeout=10).resumed is True
    fake.auto_ack = True
    second.push(fake.acks_for(fake.reports(second)))
    fake.wait_for(lambda: worker.unacknowledged_reports == 0)


def test_in_flight_step_survives_a_resume_and_reports_to_the_new_stream(fake, make_worker):
    worker = make_worker()
    release = threading.Event()

    @worker.handler("slow")
    def slow(step, ctx):
        release.wait(10)
        return {"done": True}

    worker.start()
    first = fake.stream(0)
    first.push(batch("b1", assignment("s1", "slow")))
    fake.wait_for(lambda: any(r.step_id == "s1" for r in fake.reports(first)))
    fake.in_flight = [("s1", 1)]
    worker.interrupt_connection()
    second = fake.stream(1)
    info = worker.wait_for_session(1, timeout=10)
    assert info.resumed and info.in_flight == (("s1", 1),)
    release.set()
    fake.wait_for(lambda: len(final(fake, "s1", second)) == 1)


def test_steps_not_listed_on_resume_are_abandoned_without_reports(fake, make_worker):
    worker = make_worker()
    observed = threading.Event()

    @worker.handler("slow")
    def slow(step, ctx):
        if ctx.wait_cancelled(10):
            observed.set()
        return {"done": True}

    worker.start()
    first = fake.stream(0)
    first.push(batch("b1", assignment("s1", "slow")))
    fake.wait_for(lambda: any(r.step_id == "s1" for r in fake.reports(first)))
    fake.in_flight = []
    worker.interrupt_connection()
    assert observed.wait(10)
    fake.wait_for(lambda: worker.in_flight == 0)
    assert final(fake, "s1") == []


def test_duplicate_switch_sends_the_completion_twice_and_the_duplicate_ack_is_harmless(fake, make_worker):
    worker = make_worker()

    @worker.handler("dup")
    def dup(step, ctx):
        worker.debug_duplicate_next_report()
        return {"ok": True}

    worker.start()
    fake.stream(0).push(batch("b1", assignment("s1", "dup")))
    fake.wait_for(lambda: len(final(fake, "s1")) == 2)
    first, second = final(fake, "s1")
    assert first.report_id == second.report_id
    fake.wait_for(lambda: worker.unacknowledged_reports == 0)


def test_cancel_reaches_the_handler_and_suppresses_its_final_report(fake, make_worker):
    worker = make_worker()
    observed = []

    @worker.handler("wait")
    def wait(step, ctx):
        ctx.progress({"waiting": True})
        if ctx.wait_cancelled(10):
            observed.append(ctx.cancel_reason)
        return {"late": True}

    worker.start()
    stream = fake.stream(0)
    stream.push(batch("b1", assignment("s1", "wait")))
    fake.wait_for(lambda: any(r.WhichOneof("kind") == "progress" for r in fake.reports()))
    stream.push(worker_pb2.ServerMessage(cancel=worker_pb2.Cancel(
        steps=[common_pb2.StepRef(step_id="s1", attempt=1)], reason="task cancelled")))
    fake.wait_for(lambda: worker.in_flight == 0)
    assert observed == ["task cancelled"]
    assert final(fake, "s1") == []


def test_expired_session_starts_a_new_one_and_drops_old_work(fake, make_worker):
    fake.auto_ack = False
    worker = make_worker()
    worker.register("quick", lambda step: 1)
    worker.start()
    fake.stream(0).push(batch("b1", assignment("s1", "quick")))
    fake.wait_for(lambda: len(final(fake, "s1")) == 1)
    fake.expire_handles = True
    worker.interrupt_connection()
    refused = fake.stream(1)
    assert refused.hello.resume_handle != ""
    fresh = fake.stream(2)
    assert fresh.hello.resume_handle == ""
    info = worker.wait_for_session(1, timeout=10)
    assert not info.resumed and info.session_id == "session-2"
    fake.wait_for(lambda: worker.unacknowledged_reports == 0)
    assert fake.reports(fresh) == []


def test_heartbeats_flow_while_a_handler_is_busy(fake, make_worker):
    fake.heartbeat_interval_ms = 50
    worker = make_worker()
    release = threading.Event()
    worker.register("busy", lambda step: release.wait(10))
    worker.start()
    fake.stream(0).push(batch("b1", assignment("s1", "busy")))
    fake.wait_for(lambda: len(fake.messages("heartbeat")) >= 3)
    release.set()
    fake.wait_for(lambda: len(final(fake, "s1")) == 1)


def test_stop_drains_finishes_in_flight_waits_for_acks_and_half_closes(fake, make_worker):
    worker = make_worker()
    release = threading.Event()
    worker.register("slow", lambda step: release.wait(10) and {"done": True})
    worker.start()
    stream = fake.stream(0)
    stream.push(batch("b1", assignment("s1", "slow")))
    fake.wait_for(lambda: any(r.step_id == "s1" for r in fake.reports()))
    stopper = threading.Thread(target=worker.stop, kwargs={"grace": 10})
    stopper.start()
    fake.wait_for(lambda: len(fake.messages("drain")) == 1)
    assert fake.messages("drain")[0].drain.grace_ms == 10000
    release.set()
    stopper.join(10)
    assert not stopper.is_alive()
    assert worker.wait(0)
    assert json.loads(final(fake, "s1")[0].completed.result_json) == {"done": True}
    assert worker.unacknowledged_reports == 0
    assert stream.ended.wait(10)


def test_refused_token_stops_run_with_the_mapped_error(fake, make_worker):
    fake.refuse = (grpc.StatusCode.UNAUTHENTICATED, "UNAUTHENTICATED")
    worker = make_worker()
    worker.register("x", lambda step: None)
    with pytest.raises(UnauthenticatedError) as caught:
        worker.run(install_signal_handlers=False)
    assert caught.value.code == "UNAUTHENTICATED"
    assert worker.error is caught.value


def test_rejected_report_cancels_the_running_step(fake, make_worker):
    worker = make_worker()
    observed = threading.Event()

    @worker.handler("slow")
    def slow(step, ctx):
        ctx.progress({"p": 1})
        if ctx.wait_cancelled(10):
            observed.set()
        return None

    fake.reject = {1: worker_pb2.REJECT_REASON_STALE_ATTEMPT}
    worker.start()
    fake.stream(0).push(batch("b1", assignment("s1", "slow")))
    assert observed.wait(10)
    fake.wait_for(lambda: worker.in_flight == 0)
    assert final(fake, "s1") == []
