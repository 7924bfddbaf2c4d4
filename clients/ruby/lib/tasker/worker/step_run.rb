# frozen_string_literal: true

module Tasker
  class Worker
    # One attempt of one step held by the worker, from its StepBatch until it
    # can be forgotten. Mutated only under the session's lock.
    #
    # It can be forgotten once its handler is not running and either the final
    # report was acknowledged or the step was dropped (cancelled by the server,
    # or taken away when a lease was lost).
    class StepRun
      # @return [Tasker::V1::StepAssignment]
      attr_reader :assignment
      # @return [String] StepBatch.batch_id it arrived in
      attr_reader :batch_id
      # @return [Tasker::StepContext, nil] set when the handler starts
      attr_accessor :ctx
      # @return [Boolean] whether a pool thread is running (or about to run) its handler
      attr_accessor :handler_running
      # @return [Integer, nil] id of the final report (completed or failed), once queued
      attr_accessor :final_report_id
      # @return [Boolean] whether the final report was acknowledged (any status)
      attr_accessor :final_acked
      # @return [String, nil] why the step was dropped; nil while it is ours
      attr_accessor :dropped
      # @return [Integer] last progress seq used
      attr_accessor :progress_seq

      # @param assignment [Tasker::V1::StepAssignment]
      # @param batch_id [String]
      def initialize(assignment, batch_id)
        @assignment = assignment
        @batch_id = batch_id
        @ctx = nil
        @handler_running = false
        @final_report_id = nil
        @final_acked = false
        @dropped = nil
        @progress_seq = 0
      end

      # @return [Array(String, Integer)] (step_id, attempt), the key of every report
      def key
        [assignment.step_id, assignment.attempt]
      end

      # @return [Boolean] whether reports about it may still be sent
      def reportable?
        dropped.nil? && final_report_id.nil?
      end

      # @return [Boolean] dropped while its handler still occupies a thread
      def zombie?
        !dropped.nil? && handler_running
      end

      # @return [Boolean] see the class comment
      def forgettable?
        !handler_running && (!dropped.nil? || final_acked)
      end

      # @return [String] for logs
      def describe
        "#{assignment.step_name} (step #{assignment.step_id}, attempt #{assignment.attempt})"
      end
    end
  end
end
