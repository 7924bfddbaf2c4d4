# frozen_string_literal: true

require 'minitest/autorun'
require 'logger'
require 'stringio'
require 'tasker'

module TestHelpers
  # A logger that keeps lines in memory (shown when a test fails).
  def quiet_logger
    @log_output = StringIO.new
    Logger.new(@log_output, level: ENV['TASKER_TEST_LOG'] ? Logger::DEBUG : Logger::INFO)
  end

  # The lines logged so far through {quiet_logger}.
  def logged
    @log_output&.string.to_s
  end

  def assignment(step_id, attempt: 1, handler: 'test.echo', step_name: nil, context: {}, config: {},
                 ancestors: {}, max_attempts: 3)
    Tasker::V1::StepAssignment.new(
      step_id: step_id, attempt: attempt, task_id: "task-#{step_id}", step_name: step_name || "step_#{step_id}",
      handler: handler, max_attempts: max_attempts, timeout_ms: 30_000,
      template: Tasker::V1::TemplateRef.new(namespace: 'test', name: 'flow', version: '1.0.0'),
      handler_config_json: Tasker::Convert.to_json_bytes(config),
      context_json: Tasker::Convert.to_json_bytes(context),
      ancestor_results_json: Tasker::Convert.to_json_bytes(ancestors)
    )
  end

  def step_report(step_id, kind = :started, attempt: 1)
    message = case kind
              when :started then Tasker::V1::StepStarted.new
              when :completed then Tasker::V1::StepCompleted.new(result_json: '{"ok":true}')
              when :failed then Tasker::V1::StepFailed.new(error: Tasker::V1::StepError.new(message: 'x'))
              when :progress then Tasker::V1::StepProgress.new(seq: 1, payload_json: '{}')
              end
    Tasker::V1::StepReport.new(step_id: step_id, attempt: attempt, kind => message)
  end

  # Waits (bounded) until the block returns a truthy value.
  def eventually(timeout: 10)
    deadline = Time.now + timeout
    loop do
      value = yield
      return value if value
      raise Minitest::Assertion, "condition not met within #{timeout}s\n#{logged}" if Time.now > deadline

      sleep 0.01
    end
  end
end

Minitest::Test.include(TestHelpers)

# A test that hangs prints every thread's backtrace and ends the run, so a
# deadlock shows where it is instead of stalling `npm test`.
module HangWatchdog
  LIMIT_SECONDS = Integer(ENV.fetch('TASKER_TEST_HANG_SECONDS', '60'))

  def run
    watchdog = Thread.new do
      sleep LIMIT_SECONDS
      warn "#{self.class}##{name} still running after #{LIMIT_SECONDS}s; thread backtraces:"
      Thread.list.each { |t| warn "--- #{t.name || t.inspect}\n  #{Array(t.backtrace).join("\n  ")}" }
      warn logged
      exit!(2)
    end
    super
  ensure
    watchdog&.kill
  end
end
Minitest::Test.prepend(HangWatchdog)
