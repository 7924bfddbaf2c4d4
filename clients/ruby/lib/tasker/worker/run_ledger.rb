# frozen_string_literal: true

require 'set'
require 'tasker/v1/worker_pb'
require 'tasker/convert'
require 'tasker/worker/report_buffer'
require 'tasker/worker/batch_tracker'
require 'tasker/worker/step_run'

module Tasker
  class Worker
    # The steps a session holds and what the worker has said about them: the
    # StepRuns, the unacknowledged reports (ReportBuffer) and the batches
    # (BatchTracker), with the rules that tie them together:
    #
    # * nothing is reported about a run once it is dropped or has its final report;
    # * a final report or a drop settles the run's batch (BatchCompleted);
    # * a run is forgotten once its handler has returned and its final report
    #   was acknowledged, or it was dropped;
    # * a rejected report whose reason says the step is no longer ours drops it.
    #
    # Not thread-safe on its own: the Session calls it under its lock.
    class RunLedger
      # Reasons for which a rejected report means the step is no longer ours.
      LOST_REASONS = %i[
        REJECT_REASON_STALE_ATTEMPT REJECT_REASON_UNKNOWN_STEP REJECT_REASON_NOT_LEASED_TO_SESSION
        REJECT_REASON_STEP_NOT_RUNNING REJECT_REASON_TASK_CANCELLED
      ].freeze

      # @return [ReportBuffer]
      attr_reader :buffer

      # @param logger [Logger]
      def initialize(logger:)
        @logger = logger
        @buffer = ReportBuffer.new
        @batches = BatchTracker.new
        @runs = {} # [step_id, attempt] => StepRun
      end

      # Registers the steps of a StepBatch.
      # @param batch [Tasker::V1::StepBatch]
      # @return [Array<StepRun>] the new runs (a step already held is skipped)
      def add_batch(batch)
        fresh = batch.steps.map { |a| StepRun.new(a, batch.batch_id) }.reject { |run| @runs.key?(run.key) }
        fresh.each { |run| @runs[run.key] = run }
        @batches.add(batch.batch_id, fresh.map(&:key))
        fresh
      end

      # @return [Boolean] false when the run was dropped before its handler started
      def begin_run(run, ctx)
        return false unless run.dropped.nil?

        run.handler_running = true
        run.ctx = ctx
        true
      end

      # Queues a report about the run unless it is no longer reportable.
      # @param kind [Hash] e.g. `{ started: Tasker::V1::StepStarted.new }`
      # @return [Tasker::V1::StepReport, nil]
      def report(run, kind)
        return nil unless run.reportable?

        @buffer.add(Tasker::V1::StepReport.new(step_id: run.assignment.step_id, attempt: run.assignment.attempt, **kind))
      end

      # Queues a StepProgress with the run's next seq.
      # @raise [Tasker::PayloadTooLarge]
      def report_progress(run, payload)
        progress = Tasker::V1::StepProgress.new(seq: run.progress_seq + 1, payload_json: Convert.to_json_bytes(payload))
        report = report(run, { progress: progress })
        run.progress_seq += 1 if report
        report
      end

      # Queues the final report (completed or failed) and settles the batch.
      def report_final(run, kind)
        report = report(run, kind)
        return nil unless report

        run.final_report_id = report.report_id
        settle(run, report.kind)
        report
      end

      # The run's handler returned (or was skipped).
      def finish_run(run)
        run.handler_running = false
        forget
      end

      # Applies the ResultAcks of an AckBatch, in order.
      # @param acks [Enumerable<Tasker::V1::ResultAck>]
      def apply_acks(acks)
        acks.each { |ack| apply_ack(ack) }
        forget
      end

      # Drops the runs named by a Cancel.
      # @param refs [Enumerable<Tasker::V1::StepRef>]
      def cancel(refs, reason)
        refs.each do |ref|
          run = @runs[[ref.step_id, ref.attempt]]
          drop(run, reason) if run
        end
        forget
      end

      # Drops every run still waiting for its final report (or every run, with `all`).
      def drop_all(reason, all: false)
        @runs.each_value { |run| drop(run, reason) if all || run.final_report_id.nil? }
        forget
      end

      # Aligns with a resumed Welcome's in-flight list: a step we run that is not
      # listed was taken away; a listed step we never received was lost with the
      # old stream and is failed (retryably) so it runs again at once.
      def reconcile(in_flight)
        listed = in_flight.to_set { |ref| [ref.step_id, ref.attempt] }
        @runs.each_value { |run| drop(run, 'lease lost while disconnected') if run.reportable? && !listed.include?(run.key) }
        (listed - @runs.keys.to_set - @buffer.pending_keys).each { |step_id, attempt| fail_lost(step_id, attempt) }
        forget
      end

      # Forgets every run, report and batch (their session expired).
      # @return [Integer] unacknowledged reports dropped
      def discard
        drop_all('session expired', all: true)
        @batches.clear
        @buffer.discard
      end

      # @return [Boolean] every held step settled and every report acknowledged
      def idle?
        @runs.each_value.none? { |run| run.dropped.nil? } && @buffer.empty?
      end

      # @return [Integer] dropped runs whose handlers still occupy a thread
      def zombie_count
        @runs.each_value.count(&:zombie?)
      end

      private

      def apply_ack(ack)
        report = @buffer.ack(ack)
        return log_settled_ack(ack) unless report

        log_ack(ack, report)
        run = @runs[[report.step_id, report.attempt]]
        return unless run

        run.final_acked = true if run.final_report_id == report.report_id
        rejected(run, report, ack) if ack.status == :ACK_STATUS_REJECTED
      end

      def drop(run, reason)
        return unless run.dropped.nil?

        run.dropped = reason
        settle(run, :dropped) if run.final_report_id.nil?
        run.ctx&.cancel!(reason)
        @logger.info("tasker: dropped #{run.describe}: #{reason}")
      end

      def settle(run, outcome)
        completed = @batches.settle(run.batch_id, run.key, outcome)
        @buffer.add_batch_completed(completed) if completed
      end

      def forget
        @runs.delete_if { |_key, run| run.forgettable? }
      end

      def rejected(run, report, ack)
        if LOST_REASONS.include?(ack.reason)
          drop(run, "report rejected: #{ack.reason}")
        elsif run.final_report_id == report.report_id && report.kind == :completed
          replace_rejected_result(run, ack)
        end
      end

      # The server refused to store the result (too large or not valid JSON):
      # fail the attempt instead of leaving it leased until it times out.
      def replace_rejected_result(run, ack)
        code = ack.reason == :REJECT_REASON_PAYLOAD_TOO_LARGE ? ReportBuffer::PAYLOAD_TOO_LARGE : 'INVALID_RESULT'
        error = Tasker::V1::StepError.new(error_class: 'Tasker::ResultRejected', code: code, retryable: false,
                                          message: "the server rejected the step's result: #{ack.message}")
        report = @buffer.add(Tasker::V1::StepReport.new(step_id: run.assignment.step_id, attempt: run.assignment.attempt,
                                                        failed: Tasker::V1::StepFailed.new(error: error)))
        run.final_report_id = report.report_id
        run.final_acked = false
      end

      def fail_lost(step_id, attempt)
        @logger.warn("tasker: step #{step_id} attempt #{attempt} is leased to this session but never arrived; failing it")
        error = Tasker::V1::StepError.new(
          error_class: 'Tasker::AssignmentLost', code: 'ASSIGNMENT_LOST', retryable: true, retry_after_ms: 0,
          message: 'the assignment was lost in transit before the worker received it'
        )
        @buffer.add(Tasker::V1::StepReport.new(step_id: step_id, attempt: attempt,
                                               failed: Tasker::V1::StepFailed.new(error: error)))
      end

      # An ack for a report no longer pending: the copy sent by the duplicate
      # test switch, or a resend racing its first ack.
      def log_settled_ack(ack)
        @logger.info("tasker: report #{ack.report_id} for step #{ack.step_id} acknowledged again (#{ack.status})")
      end

      def log_ack(ack, report)
        case ack.status
        when :ACK_STATUS_REJECTED
          @logger.warn("tasker: #{report.kind} report #{ack.report_id} for step #{report.step_id} attempt " \
                       "#{report.attempt} rejected: #{ack.reason} #{ack.message}")
        when :ACK_STATUS_DUPLICATE
          @logger.info("tasker: #{report.kind} report #{ack.report_id} for step #{report.step_id} acknowledged as duplicate")
        end
      end
    end
  end
end
