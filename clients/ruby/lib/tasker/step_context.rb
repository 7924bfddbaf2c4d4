# frozen_string_literal: true

require 'tasker/errors'

module Tasker
  # The handler's line back to the worker while one step attempt runs:
  # progress reports, cancellation and a logger tagged with the step.
  #
  #   def process(step, ctx)
  #     rows.each_slice(100).with_index(1) do |slice, i|
  #       ctx.check_cancelled!            # raises Tasker::Cancelled once cancelled
  #       import(slice)
  #       ctx.progress(done: i * 100, of: rows.size)
  #     end
  #   end
  #
  # A step is cancelled when its task is cancelled (server Cancel) or when the
  # worker lost the step (its lease expired while the connection was down, or
  # the worker is stopping past its grace period). After cancellation nothing
  # more the handler produces is reported: the server has settled the step.
  class StepContext
    # @return [Tasker::Step] the step being run
    attr_reader :step
    # @return [Logger] logger whose lines carry the step id and correlation id
    attr_reader :logger

    # @param step [Tasker::Step]
    # @param logger [Logger]
    # @param progress_sink [#call] called with each progress payload
    # @api private (built by the worker)
    def initialize(step:, logger:, progress_sink:)
      @step = step
      @logger = logger
      @progress_sink = progress_sink
      @mutex = Mutex.new
      @cond = ConditionVariable.new
      @cancel_reason = nil
      @callbacks = []
    end

    # Reports progress inside the step; stored by the server and replayed to
    # WatchTask subscribers. Sent asynchronously, coalesced with other reports.
    #
    # @param payload [Object] any JSON value, e.g. `{done: 40, of: 100}`
    # @return [Boolean] false when the step is already cancelled (nothing sent)
    # @raise [Tasker::PayloadTooLarge] when the payload cannot fit in one report
    def progress(payload = nil, **fields)
      payload = fields if payload.nil? && !fields.empty?
      return false if cancelled?

      @progress_sink.call(payload)
    end

    # @return [Boolean] true once the step was cancelled
    def cancelled?
      @mutex.synchronize { !@cancel_reason.nil? }
    end

    # @return [String, nil] why the step was cancelled
    def cancel_reason
      @mutex.synchronize { @cancel_reason }
    end

    # Registers a block run (on its own thread) when the step is cancelled; run
    # at once if it already is. Use it to abort blocking I/O.
    # @yieldparam reason [String]
    # @return [self]
    def on_cancel(&block)
      raise ArgumentError, 'on_cancel needs a block' unless block

      reason = @mutex.synchronize do
        @callbacks << block if @cancel_reason.nil?
        @cancel_reason
      end
      run_callbacks([block], reason) if reason
      self
    end

    # @raise [Tasker::Cancelled] if the step was cancelled
    # @return [nil]
    def check_cancelled!
      reason = cancel_reason
      raise Tasker::Cancelled, "step #{step.step_name} cancelled: #{reason}" if reason

      nil
    end

    # Blocks until the step is cancelled or the timeout elapses.
    # @param timeout [Numeric, nil] seconds; nil = wait indefinitely
    # @return [Boolean] whether the step is cancelled
    def wait_for_cancellation(timeout = nil)
      deadline = timeout && (monotonic + timeout)
      @mutex.synchronize do
        while @cancel_reason.nil?
          remaining = deadline && (deadline - monotonic)
          break if remaining && remaining <= 0

          @cond.wait(@mutex, remaining)
        end
        !@cancel_reason.nil?
      end
    end

    # @return [Float, nil] seconds left before the attempt's deadline (may be negative)
    def time_remaining
      step.deadline && (step.deadline - Time.now)
    end

    # Marks the step cancelled, wakes waiters and runs on_cancel blocks.
    # Idempotent: only the first call has an effect.
    # @param reason [String]
    # @return [Boolean] true when this call cancelled the step
    # @api private (called by the worker)
    def cancel!(reason)
      callbacks = @mutex.synchronize do
        return false unless @cancel_reason.nil?

        @cancel_reason = reason.to_s
        @cond.broadcast
        @callbacks.dup.tap { @callbacks.clear }
      end
      run_callbacks(callbacks, reason.to_s)
      true
    end

    private

    def run_callbacks(callbacks, reason)
      return if callbacks.empty?

      Thread.new do
        callbacks.each do |cb|
          cb.call(reason)
        rescue StandardError => e
          logger.error("on_cancel callback failed: #{e.class}: #{e.message}")
        end
      end
    end

    def monotonic
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end
  end
end
