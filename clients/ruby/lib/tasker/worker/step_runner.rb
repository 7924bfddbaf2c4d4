# frozen_string_literal: true

require 'tasker/step'
require 'tasker/step_context'
require 'tasker/failure'
require 'tasker/tagged_logger'
require 'tasker/convert'

module Tasker
  class Worker
    # Runs one StepRun on a pool thread: StepStarted, the handler's process and
    # process_results, then StepCompleted with the result or StepFailed with
    # the mapped error. Nothing is reported once the run was dropped: the
    # server has settled the step, and its late reports would be refused.
    class StepRunner
      # @param session [Session]
      # @param handlers [Hash{String => #call}] handler name => factory returning
      #   a fresh handler instance
      # @param logger [Logger]
      def initialize(session:, handlers:, logger:)
        @session = session
        @handlers = handlers
        @logger = logger
      end

      # Thread-local key naming the step the current pool thread runs.
      CURRENT_STEP_KEY = :tasker_step_id

      # @return [String, nil] the step_id of the handler running on the calling thread
      def self.current_step_id
        Thread.current[CURRENT_STEP_KEY]
      end

      # @param run [StepRun]
      def call(run)
        step, parse_error = parse(run.assignment)
        ctx = build_context(run, step)
        return unless @session.begin_run(run, ctx)

        Thread.current[CURRENT_STEP_KEY] = run.assignment.step_id
        execute(run, step, ctx, parse_error)
      ensure
        Thread.current[CURRENT_STEP_KEY] = nil
        @session.finish_run(run)
      end

      private

      def execute(run, step, ctx, parse_error)
        @session.report(run, started: Tasker::V1::StepStarted.new(started_at: Convert.to_timestamp(Time.now)))
        raise parse_error if parse_error

        result = invoke(run, step, ctx)
        return if ctx.cancelled?

        @session.report_final(run, completed: Tasker::V1::StepCompleted.new(result_json: serialize(result)))
      rescue Tasker::Cancelled => e
        fail_step(run, ctx, e) unless ctx.cancelled?
      rescue StandardError, ScriptError => e
        fail_step(run, ctx, e)
      end

      def invoke(run, step, ctx)
        factory = @handlers.fetch(run.assignment.handler) do
          raise Tasker::RetryableError, "no handler registered for #{run.assignment.handler.inspect}"
        end
        handler = factory.call
        output = handler.process(step, ctx)
        handler.process_results(step, output)
      end

      # A result JSON cannot represent (NaN, Infinity, cyclic) fails the step for good.
      def serialize(result)
        Convert.to_json_bytes(result)
      rescue JSON::GeneratorError, JSON::NestingError, SystemStackError => e
        raise Tasker::PermanentError.new("the step result is not JSON-serializable: #{e.message}",
                                         code: 'RESULT_NOT_SERIALIZABLE')
      end

      def fail_step(run, ctx, error)
        if ctx.cancelled?
          ctx.logger.info("handler ended after cancellation (#{ctx.cancel_reason}): #{error.class}: #{error.message}")
          return
        end
        level = error.is_a?(Tasker::HandlerError) ? :info : :warn
        ctx.logger.public_send(level, "failed: #{error.class}: #{error.message}")
        @session.report_final(run, failed: Tasker::V1::StepFailed.new(error: Failure.from_exception(error)))
      end

      # A malformed JSON field fails the attempt (after StepStarted) instead of
      # crashing the processor; the handler then gets a Step with empty fields.
      def parse(assignment)
        [Step.from_assignment(assignment), nil]
      rescue JSON::ParserError => e
        empty = Step.from_assignment(Tasker::V1::StepAssignment.new(
                                       step_id: assignment.step_id, attempt: assignment.attempt,
                                       task_id: assignment.task_id, template: assignment.template,
                                       step_name: assignment.step_name, handler: assignment.handler,
                                       max_attempts: assignment.max_attempts, timeout_ms: assignment.timeout_ms,
                                       correlation_id: assignment.correlation_id, deadline: assignment.deadline
                                     ))
        [empty, e]
      end

      def build_context(run, step)
        tag = "[#{step.handler} #{step.step_name} step_id=#{step.step_id} attempt=#{step.attempt}" \
              "#{step.correlation_id ? " correlation_id=#{step.correlation_id}" : ''}]"
        StepContext.new(step: step, logger: TaggedLogger.new(@logger, tag),
                        progress_sink: ->(payload) { @session.report_progress(run, payload) })
      end
    end
  end
end
