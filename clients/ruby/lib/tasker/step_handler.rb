# frozen_string_literal: true

module Tasker
  # Base class of step handlers, in the manner of Tasker's Rails step
  # handlers and Sidekiq jobs: one class per handler name, a fresh instance
  # per step attempt (so instance variables never leak between steps).
  #
  #   class ChargeCard < Tasker::StepHandler
  #     handler_name 'payments.charge'
  #
  #     def process(step, ctx)
  #       charge = Gateway.charge(step.context['card_token'], step.context['amount'])
  #       raise Tasker::PermanentError.new('card declined', code: 'CARD_DECLINED') if charge.declined?
  #       charge
  #     end
  #
  #     # Optional: shapes what is stored as the step's result (what descendants receive).
  #     def process_results(step, charge)
  #       { 'charge_id' => charge.id, 'amount' => charge.amount }
  #     end
  #   end
  #
  #   worker.register(ChargeCard)
  #
  # The value process_results returns (by default, what process returned) must
  # be JSON-serializable. Raise Tasker::PermanentError or Tasker::RetryableError
  # to shape a failure; any other exception is a retryable failure.
  class StepHandler
    class << self
      # Sets (with an argument) or returns the handler name, matched exactly
      # against the template's `handler`. Defaults to the class name, e.g.
      # `Payments::ChargeCard`.
      # @param name [String, nil]
      # @return [String]
      def handler_name(name = nil)
        @handler_name = name.to_s unless name.nil?
        @handler_name || self.name
      end
    end

    # Runs one attempt of the step.
    # @param step [Tasker::Step]
    # @param ctx [Tasker::StepContext]
    # @return [Object] output handed to {#process_results}
    def process(step, ctx)
      raise NotImplementedError, "#{self.class.name} must implement process(step, ctx)"
    end

    # Turns process's output into the stored result.
    # @param step [Tasker::Step]
    # @param output [Object]
    # @return [Object] a JSON-serializable value
    def process_results(_step, output)
      output
    end
  end

  # A handler given as a block: `worker.handle('name') { |step, ctx| ... }`.
  # @api private
  class BlockHandler < StepHandler
    # @param block [Proc] called with (step, ctx)
    def initialize(block)
      super()
      @block = block
    end

    # @see StepHandler#process
    def process(step, ctx)
      @block.call(step, ctx)
    end
  end
end
