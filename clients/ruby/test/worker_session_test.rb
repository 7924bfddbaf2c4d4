# frozen_string_literal: true

require_relative 'test_helper'
require_relative 'support/scripted_server'

# The worker's side of the session protocol, against a scripted peer on a
# real gRPC socket.
class WorkerSessionTest < Minitest::Test
  def setup
    @server = ScriptedServer.new
    @events = Queue.new
    @release = Queue.new
    @contexts = Queue.new
    @worker = Tasker::Worker.new(address: @server.address, name: 'test-worker', token: 'secret', concurrency: 3,
                                 labels: { host: 'h1' }, logger: quiet_logger, reconnect: { base: 0.01, max: 0.05 })
    register_handlers
    %i[ready resumed stopped].each { |e| @worker.on(e) { |info| @events << [e, info] } }
  end

  def teardown
    @worker.stop(grace: 0) if @worker.running?
    @server.stop
  end

  def register_handlers
    @worker.handle('test.echo') { |step, ctx| ctx.progress(step: step.step_name) && { 'name' => step.step_name } }
    @worker.handle('test.raise') { |_step, _ctx| raise ArgumentError, 'boom' }
    @worker.handle('test.permanent') { |_s, _c| raise Tasker::PermanentError.new('no', code: 'NOPE') }
    @worker.handle('test.nan') { |_s, _c| { 'ratio' => Float::NAN } }
    @worker.handle('test.stop') { |_s, _c| { 'stop_returned' => @worker.stop(grace: 10).inspect } }
    @worker.handle('test.block') do |step, ctx|
      @contexts << ctx
      @release.pop
      { 'released' => step.step_id }
    end
  end

  # Starts the worker and completes the handshake on its first stream.
  def start_session(**welcome)
    @worker.start
    stream = @server.next_stream
    hello = stream.next_message
    stream.welcome(**welcome)
    assert_equal :ready, @events.pop.first
    [stream, hello.hello]
  end

  def batch(stream, *assignments, batch_id: 'b1')
    stream.send_message(batch: Tasker::V1::StepBatch.new(batch_id: batch_id, steps: assignments))
  end

  def test_hello_announces_the_worker_and_its_credit
    stream, hello = start_session
    assert_equal ['Bearer secret'], Array(stream.metadata['authorization'])
    assert_equal ['test-worker', 'ruby', Tasker::VERSION], [hello.worker_name, hello.language, hello.sdk_version]
    assert_equal %w[test.block test.echo test.nan test.permanent test.raise test.stop], hello.handlers.to_a.sort
    assert_equal 3, hello.max_in_flight
    assert_equal({ 'host' => 'h1' }, hello.labels.to_h)
    assert_equal '', hello.resume_handle
    assert_equal 'sess-1', @worker.session_id
  end

  def test_runs_a_batch_and_reports_started_progress_completed_and_batch_completed
    stream, = start_session
    batch(stream, assignment('s1'), assignment('s2'))
    reports, batches = stream.reports_until { |r, b| r.count { |x| x.kind == :completed } == 2 && b.any? }

    %w[s1 s2].each do |id|
      mine = reports.select { |r| r.step_id == id }
      assert_equal %i[started progress completed], mine.map(&:kind)
      assert_equal 1, mine[1].progress.seq
      assert_equal({ 'name' => "step_#{id}" }, JSON.parse(mine[2].completed.result_json))
    end
    assert_equal reports.map(&:report_id).sort, reports.map(&:report_id), 'ids increase in sending order'
    assert_equal [['b1', 2, 0]], batches.map { |b| [b.batch_id, b.completed, b.failed] }
  end

  def test_handler_failures_are_reported_with_class_message_backtrace_and_retryability
    stream, = start_session
    batch(stream, assignment('s1', handler: 'test.raise'), assignment('s2', handler: 'test.permanent'))
    reports, batches = stream.reports_until { |r, b| r.count { |x| x.kind == :failed } == 2 && b.any? }

    raised = reports.find { |r| r.step_id == 's1' && r.kind == :failed }.failed.error
    assert_equal %w[ArgumentError boom], [raised.error_class, raised.message]
    assert raised.retryable
    refute_empty raised.backtrace

    permanent = reports.find { |r| r.step_id == 's2' && r.kind == :failed }.failed.error
    assert_equal ['Tasker::PermanentError', 'NOPE', false], [permanent.error_class, permanent.code, permanent.retryable]
    assert_equal [0, 2], [batches.first.completed, batches.first.failed]
  end

  def test_a_result_json_cannot_hold_fails_the_step_permanently
    stream, = start_session
    batch(stream, assignment('s1', handler: 'test.nan'))
    reports, = stream.reports_until { |r, _| r.any? { |x| x.kind == :failed } }
    error = reports.last.failed.error
    assert_equal ['RESULT_NOT_SERIALIZABLE', false], [error.code, error.retryable]
  end

  def test_resumes_after_a_dropped_stream_and_resends_unacknowledged_reports_with_their_ids
    stream, = start_session(handle: 'h-42')
    batch(stream, assignment('s1', handler: 'test.block'))
    started, = stream.reports_until { |r, _| r.any? { |x| x.kind == :started } }

    @worker.interrupt_connection
    second = @server.next_stream
    hello = second.next_message.hello
    assert_equal 'h-42', hello.resume_handle
    second.welcome(handle: 'h-42', resumed: true,
                   in_flight: [Tasker::V1::StepRef.new(step_id: 's1', attempt: 1)])
    event, info = @events.pop
    assert_equal [:resumed, 1], [event, info.in_flight]

    resent, = second.reports_until { |r, _| r.any? { |x| x.kind == :started } }
    assert_equal started.first.report_id, resent.first.report_id
    second.ack(resent)

    ctx = @contexts.pop
    refute ctx.cancelled?, 'a step listed as in flight keeps running'
    @release << :go
    done, = second.reports_until { |r, _| r.any? { |x| x.kind == :completed } }
    assert_equal 's1', done.last.step_id
  end

  def test_steps_not_listed_on_resume_are_dropped_and_listed_unknown_ones_failed
    stream, = start_session
    batch(stream, assignment('s1', handler: 'test.block'))
    stream.reports_until { |r, _| r.any? }
    ctx = @contexts.pop

    @worker.interrupt_connection
    second = @server.next_stream
    second.next_message
    second.welcome(resumed: true, in_flight: [Tasker::V1::StepRef.new(step_id: 'ghost', attempt: 2)])
    assert ctx.wait_for_cancellation(10), 'the handler of a step taken away is cancelled'

    reports, = second.reports_until { |r, _| r.any? { |x| x.kind == :failed } }
    lost = reports.find { |x| x.kind == :failed }
    assert_equal ['ghost', 2, 'Tasker::AssignmentLost', true],
                 [lost.step_id, lost.attempt, lost.failed.error.error_class, lost.failed.error.retryable]
    @release << :go
  end

  def test_session_expired_starts_a_new_session_and_cancels_what_the_old_one_held
    stream, = start_session(handle: 'old')
    batch(stream, assignment('s1', handler: 'test.block'))
    stream.reports_until { |r, _| r.any? }
    ctx = @contexts.pop

    @worker.interrupt_connection
    second = @server.next_stream
    assert_equal 'old', second.next_message.hello.resume_handle
    second.finish(GRPC::FailedPrecondition.new('session expired', 'tasker-error-code' => 'SESSION_EXPIRED'))

    third = @server.next_stream
    assert_equal '', third.next_message.hello.resume_handle
    assert ctx.wait_for_cancellation(10)
    third.welcome(session_id: 'sess-2', handle: 'new')
    event, info = @events.pop
    assert_equal [:ready, 'sess-2'], [event, info.session_id]
    @release << :go
  end

  def test_cancel_stops_the_handler_and_nothing_final_is_reported
    stream, = start_session
    batch(stream, assignment('s1', handler: 'test.block'))
    reports, = stream.reports_until { |r, _| r.any? }
    stream.ack(reports)
    ctx = @contexts.pop
    stream.send_message(cancel: Tasker::V1::Cancel.new(steps: [Tasker::V1::StepRef.new(step_id: 's1', attempt: 1)],
                                                       reason: 'task cancelled by test'))
    assert ctx.wait_for_cancellation(10)
    assert_equal 'task cancelled by test', ctx.cancel_reason
    _, batches = stream.reports_until { |_, b| b.any? }
    assert_equal [0, 0], [batches.first.completed, batches.first.failed]
    @release << :go
    stream.send_message(batch: Tasker::V1::StepBatch.new(batch_id: 'b2', steps: [assignment('s2')]))
    after, = stream.reports_until { |r, _| r.any? { |x| x.kind == :completed } }
    assert after.none? { |r| r.step_id == 's1' }, 'no report about the cancelled step'
  end

  def test_duplicate_switch_sends_the_same_report_twice
    stream, = start_session
    @worker.debug_duplicate_next_report!(step_id: 's1')
    batch(stream, assignment('s1'))
    reports, = stream.reports_until { |r, _| r.size >= 2 && r.first.step_id == 's1' }
    assert_equal reports[0].report_id, reports[1].report_id
    assert_equal :started, reports[1].kind
  end

  def test_graceful_stop_drains_waits_for_acks_then_closes
    stream, = start_session
    batch(stream, assignment('s1', handler: 'test.block'))
    first, = stream.reports_until { |r, _| r.any? }
    stream.ack(first)
    stopper = Thread.new { @worker.stop(grace: 10) }
    drain = stream.next_message(skip: %i[heartbeat credit])
    assert_equal :drain, drain.kind

    @release << :go
    final, = stream.reports_until { |r, _| r.any? { |x| x.kind == :completed } }
    stream.ack(final.select { |r| r.kind == :completed })
    assert_equal :closed, stream.next_message(skip: %i[heartbeat reports])
    assert stopper.value, 'stop reports a clean shutdown'
    assert_equal :stopped, @events.pop.first
  end

  def test_a_handler_may_stop_the_worker_and_its_own_step_still_completes
    stream, = start_session
    batch(stream, assignment('s1', handler: 'test.stop'))
    reports, = stream.reports_until { |r, _| r.any? { |x| x.kind == :completed } }
    assert_equal({ 'stop_returned' => 'nil' }, JSON.parse(reports.last.completed.result_json))
    stream.ack(reports)
    assert_equal :closed, stream.next_message(skip: %i[heartbeat reports drain credit])
    assert_equal :stopped, @events.pop.first
  end

  def test_a_refused_worker_stops_and_run_raises
    runner = Thread.new { @worker.run }
    runner.report_on_exception = false
    stream = @server.next_stream
    stream.next_message
    stream.finish(GRPC::Unauthenticated.new('unknown token', 'tasker-error-code' => 'UNAUTHENTICATED'))
    error = assert_raises(Tasker::Unauthenticated) { runner.value }
    assert_equal 'UNAUTHENTICATED', error.code
  end
end
