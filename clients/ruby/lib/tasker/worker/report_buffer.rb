# frozen_string_literal: true

require 'set'
require 'tasker/v1/worker_pb'

module Tasker
  class Worker
    # Every StepReport the worker produced and the server has not acknowledged.
    #
    # Invariants (session protocol, worker.proto step 5):
    # * report ids are assigned here, strictly increasing, and never change: a
    #   report resent after a reconnect carries its original id;
    # * a report stays until its ResultAck arrives (ACCEPTED, DUPLICATE or
    #   REJECTED; a rejected report is never resent);
    # * reports go out in id order, so the server applies them in order per
    #   (step_id, attempt); after a reconnect {#requeue} schedules every
    #   unacknowledged report again, in id order;
    # * {#take} coalesces whatever is waiting into as few ReportBatch messages
    #   as the size limit (Welcome.max_report_bytes) allows.
    #
    # Thread-safe: handlers add from pool threads, the stream writer takes, the
    # reader acks.
    class ReportBuffer
      # Limit used until a Welcome names one (gRPC's default message size).
      DEFAULT_MAX_BYTES = 4 * 1024 * 1024
      # Bytes kept free for WorkerMessage/ReportBatch framing and a BatchCompleted or two.
      FRAMING_BYTES = 1024
      # Reason code of the failure that replaces a final report too large to send.
      PAYLOAD_TOO_LARGE = 'PAYLOAD_TOO_LARGE'

      Entry = Struct.new(:report, :size, :duplicate)
      private_constant :Entry

      # @return [Integer] largest encoded WorkerMessage the server accepts
      attr_reader :max_bytes

      def initialize(max_bytes: DEFAULT_MAX_BYTES)
        @mutex = Mutex.new
        @next_id = 0
        @pending = {} # report_id => Entry, in id order (Hash keeps insertion order)
        @unsent = []  # report ids to send on the current stream, in id order
        @batches = [] # BatchCompleted messages not yet sent
        @duplicate_next = nil
        self.max_bytes = max_bytes
      end

      # @param bytes [Integer] Welcome.max_report_bytes; 0 = {DEFAULT_MAX_BYTES}
      def max_bytes=(bytes)
        @mutex.synchronize { @max_bytes = bytes.to_i.positive? ? bytes.to_i : DEFAULT_MAX_BYTES }
      end

      # Assigns the next report id and keeps the report until acknowledged.
      #
      # A final report (completed or failed) too large for one message is
      # replaced by a StepFailed with code PAYLOAD_TOO_LARGE.
      #
      # @param report [Tasker::V1::StepReport] report_id is overwritten
      # @return [Tasker::V1::StepReport] the report as stored (possibly replaced)
      # @raise [Tasker::PayloadTooLarge] for a progress report too large to send
      def add(report)
        @mutex.synchronize do
          report.report_id = (@next_id += 1)
          size = encoded_size(report)
          if size > budget
            report = oversize_replacement(report, size)
            size = encoded_size(report)
          end
          @pending[report.report_id] = Entry.new(report, size, take_duplicate_switch(report))
          @unsent << report.report_id
          report
        end
      end

      # Queues a BatchCompleted (informational, never acknowledged or resent).
      # @param batch_completed [Tasker::V1::BatchCompleted]
      def add_batch_completed(batch_completed)
        @mutex.synchronize { @batches << batch_completed }
      end

      # Test switch: the next report added (for step_id, when given) is sent
      # twice, with the same report id, the second time in its own message.
      # @param step_id [String, nil]
      def duplicate_next!(step_id: nil)
        @mutex.synchronize { @duplicate_next = step_id || :any }
      end

      # Removes and returns everything waiting to be sent, as ReportBatch
      # messages each below {max_bytes}.
      # @return [Array<Tasker::V1::ReportBatch>]
      def take
        @mutex.synchronize do
          messages = []
          current = Tasker::V1::ReportBatch.new
          used = 0
          @unsent.each do |id|
            entry = @pending[id]
            next unless entry # acknowledged while waiting

            if used + entry.size > budget && !current.reports.empty?
              messages << current
              current = Tasker::V1::ReportBatch.new
              used = 0
            end
            current.reports << entry.report
            used += entry.size
            next unless entry.duplicate

            entry.duplicate = false
            messages << current
            messages << Tasker::V1::ReportBatch.new(reports: [entry.report])
            current = Tasker::V1::ReportBatch.new
            used = 0
          end
          @batches.each { |b| current.batches << b }
          messages << current unless current.reports.empty? && current.batches.empty?
          @unsent.clear
          @batches.clear
          messages
        end
      end

      # Forgets an acknowledged report.
      # @param ack [Tasker::V1::ResultAck]
      # @return [Tasker::V1::StepReport, nil] the report acknowledged, or nil
      #   when it was not pending (e.g. the ack of a duplicate copy)
      def ack(ack)
        @mutex.synchronize { @pending.delete(ack.report_id)&.report }
      end

      # Schedules every unacknowledged report again, in id order (after a
      # resumed Welcome).
      def requeue
        @mutex.synchronize { @unsent = @pending.keys }
      end

      # Drops everything (the session they belong to has expired).
      # @return [Integer] how many unacknowledged reports were dropped
      def discard
        @mutex.synchronize do
          count = @pending.size
          @pending.clear
          @unsent.clear
          @batches.clear
          count
        end
      end

      # @return [Set<Array(String, Integer)>] (step_id, attempt) of every unacknowledged report
      def pending_keys
        @mutex.synchronize { @pending.each_value.to_set { |e| [e.report.step_id, e.report.attempt] } }
      end

      # @return [Integer] reports not yet acknowledged
      def pending_count
        @mutex.synchronize { @pending.size }
      end

      # @return [Boolean] true when nothing awaits sending or acknowledgement
      def empty?
        @mutex.synchronize { @pending.empty? && @batches.empty? }
      end

      # @return [Boolean] true when some report is waiting to be sent
      def unsent?
        @mutex.synchronize { @unsent.any? { |id| @pending.key?(id) } || !@batches.empty? }
      end

      private

      def budget
        @max_bytes - FRAMING_BYTES
      end

      # Encoded size of the report inside ReportBatch.reports (tag + length prefix).
      def encoded_size(report)
        bytes = Tasker::V1::StepReport.encode(report).bytesize
        bytes + 1 + varint_size(bytes)
      end

      def varint_size(value)
        size = 1
        while value >= 0x80
          value >>= 7
          size += 1
        end
        size
      end

      def take_duplicate_switch(report)
        return false unless @duplicate_next == :any || @duplicate_next == report.step_id

        @duplicate_next = nil
        true
      end

      def oversize_replacement(report, size)
        original = report.kind
        if original == :progress
          @next_id -= 1
          raise Tasker::PayloadTooLarge,
                "progress payload of #{size} bytes exceeds the server's limit of #{@max_bytes} bytes"
        end
        retryable = original == :failed && report.failed.error&.retryable
        Tasker::V1::StepReport.new(
          report_id: report.report_id, step_id: report.step_id, attempt: report.attempt,
          failed: Tasker::V1::StepFailed.new(error: Tasker::V1::StepError.new(
            error_class: 'Tasker::PayloadTooLarge', code: PAYLOAD_TOO_LARGE, retryable: retryable ? true : false,
            message: "#{original == :completed ? 'result' : 'failure'} report of #{size} bytes exceeds " \
                     "the server's limit of #{@max_bytes} bytes"
          ))
        )
      end
    end
  end
end
