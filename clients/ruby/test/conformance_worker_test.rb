# frozen_string_literal: true

require_relative 'test_helper'
require_relative 'support/scripted_server'
require 'open3'
require 'rbconfig'

# The conformance worker process (clients/ruby/conformance/worker.rb) against
# a scripted peer: its environment contract, stdout events and handler
# catalog. The real-server run is test/e2e/conformance.test.ts.
class ConformanceWorkerTest < Minitest::Test
  RUBY_ROOT = File.expand_path('..', __dir__)
  PREFIX = 'conformance.ruby'

  def setup
    @server = ScriptedServer.new
    env = { 'TASKER_ADDRESS' => @server.address, 'TASKER_TOKEN' => 'worker-token',
            'TASKER_WORKER_NAME' => 'conf-ruby', 'TASKER_HANDLER_PREFIX' => PREFIX, 'TASKER_CONCURRENCY' => '4' }
    @stdin, @stdout, @stderr, @process = Open3.popen3(env, RbConfig.ruby, "-I#{RUBY_ROOT}/lib",
                                                      "#{RUBY_ROOT}/conformance/worker.rb")
    @stdin.close
    @stderr_lines = Thread.new { @stderr.read }
    @stream = @server.next_stream
    @hello = @stream.next_message.hello
    @stream.welcome(session_id: 'conf-1', handle: 'conf-handle')
    assert_equal({ 'event' => 'ready', 'session_id' => 'conf-1' }, next_event)
  end

  def teardown
    Process.kill('KILL', @process.pid) if @process.alive?
    @process.join
    @server.stop
  end

  def next_event
    line = @stdout.gets
    raise "worker stdout closed; stderr:\n#{@stderr_lines.value}" if line.nil?

    JSON.parse(line)
  end

  def run_steps(*assignments, stream: @stream, batch_id: 'b')
    stream.send_message(batch: Tasker::V1::StepBatch.new(batch_id: batch_id, steps: assignments))
    ids = assignments.map(&:step_id)
    reports, = stream.reports_until { |r, _| ids.all? { |id| r.any? { |x| x.step_id == id && final?(x) } } }
    stream.ack(reports)
    reports
  end

  def final?(report)
    %i[completed failed].include?(report.kind)
  end

  def final_of(reports, step_id)
    reports.find { |r| r.step_id == step_id && final?(r) }
  end

  def step(step_id, name, **opts)
    assignment(step_id, handler: "#{PREFIX}.#{name}", step_name: name, **opts)
  end

  def test_hello_registers_the_catalog_under_the_prefix
    assert_equal 'conf-ruby', @hello.worker_name
    assert_equal 4, @hello.max_in_flight
    assert_equal %w[concurrency duplicate echo flaky interrupt permanent progress raise wait_for_cancel],
                 @hello.handlers.map { |h| h.delete_prefix("#{PREFIX}.") }.sort
    assert_equal ['Bearer worker-token'], Array(@stream.metadata['authorization'])
  end

  def test_result_and_failure_handlers
    reports = run_steps(
      step('e', 'echo', attempt: 2, ancestors: { 'b' => { 'value' => 2 }, 'a' => { 'value' => 1 } }),
      step('f1', 'flaky', config: { 'fail_times' => 1, 'retry_after_ms' => 150 }),
      step('f2', 'flaky', attempt: 2, config: { 'fail_times' => 1, 'retry_after_ms' => 150 }),
      step('p', 'permanent'), step('r', 'raise'), step('g', 'progress', config: { 'count' => 3 })
    )
    echo = JSON.parse(final_of(reports, 'e').completed.result_json)
    assert_equal({ 'step' => 'echo', 'language' => 'ruby', 'attempt' => 2, 'ancestors' => %w[a b], 'value' => 4 },
                 echo)

    flaky = final_of(reports, 'f1').failed.error
    assert_equal [true, 150], [flaky.retryable, flaky.retry_after_ms]
    assert_equal({ 'attempt' => 2 }, JSON.parse(final_of(reports, 'f2').completed.result_json))

    permanent = final_of(reports, 'p').failed.error
    assert_equal [false, 'CONFORMANCE_PERMANENT', 'permanent failure requested'],
                 [permanent.retryable, permanent.code, permanent.message]

    raised = final_of(reports, 'r').failed.error
    assert_equal %w[ArgumentError boom], [raised.error_class, raised.message]
    assert_match(/conformance\/worker\.rb/, raised.backtrace.first)

    progress = reports.select { |r| r.step_id == 'g' && r.kind == :progress }
    assert_equal [[1, { 'i' => 1 }], [2, { 'i' => 2 }], [3, { 'i' => 3 }]],
                 progress.map { |r| [r.progress.seq, JSON.parse(r.progress.payload_json)] }
    assert_equal({ 'count' => 3 }, JSON.parse(final_of(reports, 'g').completed.result_json))
  end

  def test_concurrency_peak_never_exceeds_the_credit
    reports = run_steps(*(1..4).map { |i| step("c#{i}", 'concurrency', config: { 'sleep_ms' => 50 }) })
    peaks = (1..4).map { |i| JSON.parse(final_of(reports, "c#{i}").completed.result_json)['peak'] }
    assert(peaks.all? { |p| p.between?(1, 4) }, "peaks #{peaks}")
  end

  def test_wait_for_cancel_prints_the_cancelled_event
    @stream.send_message(batch: Tasker::V1::StepBatch.new(batch_id: 'b', steps: [step('w', 'wait_for_cancel')]))
    reports, = @stream.reports_until { |r, _| r.any? { |x| x.kind == :progress } }
    assert_equal({ 'waiting' => true }, JSON.parse(reports.last.progress.payload_json))
    @stream.send_message(cancel: Tasker::V1::Cancel.new(steps: [Tasker::V1::StepRef.new(step_id: 'w', attempt: 1)]))
    assert_equal({ 'event' => 'cancelled', 'step_id' => 'w' }, next_event)
  end

  def test_interrupt_resumes_the_session_and_completes_on_the_new_stream
    @stream.send_message(batch: Tasker::V1::StepBatch.new(batch_id: 'b', steps: [step('i', 'interrupt')]))
    second = @server.next_stream
    assert_equal 'conf-handle', second.next_message.hello.resume_handle
    second.welcome(session_id: 'conf-1', handle: 'conf-handle', resumed: true,
                   in_flight: [Tasker::V1::StepRef.new(step_id: 'i', attempt: 1)])
    assert_equal({ 'event' => 'resumed', 'session_id' => 'conf-1', 'in_flight' => 1 }, next_event)
    reports, = second.reports_until { |r, _| r.any? { |x| final?(x) } }
    assert_equal({ 'resumed' => true }, JSON.parse(final_of(reports, 'i').completed.result_json))
  end

  def test_duplicate_sends_the_completion_twice_and_sigterm_stops_cleanly
    @stream.send_message(batch: Tasker::V1::StepBatch.new(batch_id: 'b', steps: [step('d', 'duplicate')]))
    reports, = @stream.reports_until { |r, _| r.count { |x| final?(x) } == 2 }
    copies = reports.select { |r| final?(r) }
    assert_equal 1, copies.map(&:report_id).uniq.size
    assert_equal({ 'ok' => true }, JSON.parse(copies.first.completed.result_json))
    @stream.ack(reports)
    @stream.ack(copies.first(1), status: :ACK_STATUS_DUPLICATE)

    Process.kill('TERM', @process.pid)
    assert_equal :drain, @stream.next_message(skip: %i[heartbeat credit reports]).kind
    assert_equal({ 'event' => 'stopped' }, next_event)
    assert_predicate @process.value, :success?
  end
end
