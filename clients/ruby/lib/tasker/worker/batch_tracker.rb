# frozen_string_literal: true

require 'set'
require 'tasker/v1/worker_pb'

module Tasker
  class Worker
    # Counts the outcomes of the steps of each StepBatch and produces the
    # BatchCompleted once every step of a batch has settled: reported completed,
    # reported failed, or dropped (cancelled or taken away, so no final report).
    #
    # Thread-safe.
    class BatchTracker
      Batch = Struct.new(:remaining, :completed, :failed)
      private_constant :Batch

      def initialize
        @mutex = Mutex.new
        @batches = {} # batch_id => Batch
      end

      # @param batch_id [String]
      # @param step_keys [Array] one key per step of the batch
      def add(batch_id, step_keys)
        @mutex.synchronize { @batches[batch_id] = Batch.new(step_keys.to_set, 0, 0) }
      end

      # Records the outcome of one step.
      # @param batch_id [String]
      # @param step_key [Object] the key given to {#add}
      # @param outcome [Symbol] :completed, :failed or :dropped
      # @return [Tasker::V1::BatchCompleted, nil] when this was the batch's last step
      def settle(batch_id, step_key, outcome)
        @mutex.synchronize do
          batch = @batches[batch_id]
          return nil unless batch&.remaining&.delete?(step_key)

          batch.completed += 1 if outcome == :completed
          batch.failed += 1 if outcome == :failed
          return nil unless batch.remaining.empty?

          @batches.delete(batch_id)
          Tasker::V1::BatchCompleted.new(batch_id: batch_id, completed: batch.completed, failed: batch.failed)
        end
      end

      # Forgets every batch (their session has expired).
      def clear
        @mutex.synchronize { @batches.clear }
      end

      # @return [Integer] batches with unsettled steps
      def open_count
        @mutex.synchronize { @batches.size }
      end
    end
  end
end
