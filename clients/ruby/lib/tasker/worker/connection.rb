# frozen_string_literal: true

require 'grpc'
require 'tasker/v1/worker_services_pb'
require 'tasker/convert'
require 'tasker/worker/outbound_queue'

module Tasker
  class Worker
    # One WorkerService.Connect stream.
    #
    # Threads: the caller of {#run} reads server messages; gRPC's own writer
    # thread drains the outgoing Enumerator, which is fed by an
    # {OutboundQueue}; a heartbeat thread (started by {#start_heartbeats})
    # queues a Heartbeat every interval. So however busy the handlers are, the
    # stream keeps reading acks and sending heartbeats.
    #
    # Reports are not queued one by one: {#flush} queues a wake-up, and the
    # writer then takes every report waiting in the worker's buffer at that
    # moment (`take_reports`), so reports produced while the previous message
    # was being written leave together in one ReportBatch.
    class Connection
      # How often the idle writer checks whether the call has ended, in seconds.
      WRITER_POLL_SECONDS = 0.25
      # Heartbeat interval used when a Welcome names none.
      DEFAULT_HEARTBEAT_MS = 5000
      FLUSH = :flush
      CLOSE = :close
      private_constant :FLUSH, :CLOSE

      # @return [Integer] sequence number of this connection within the worker
      attr_reader :generation

      # @param stub [Tasker::V1::WorkerService::Stub]
      # @param metadata [Hash] call metadata (authorization)
      # @param hello [Tasker::V1::Hello] first message of the stream
      # @param generation [Integer]
      # @param take_reports [#call] called with this connection; returns the
      #   ReportBatch messages to write now
      # @param logger [Logger]
      def initialize(stub:, metadata:, hello:, generation:, take_reports:, logger:)
        @stub = stub
        @metadata = metadata
        @hello = hello
        @generation = generation
        @take_reports = take_reports
        @logger = logger
        @queue = OutboundQueue.new
        @mutex = Mutex.new
        @cond = ConditionVariable.new
        @op = nil
        @closed = false
        @interrupted = false
        @heartbeat_thread = nil
      end

      # Opens the stream and blocks, yielding every ServerMessage, until the
      # stream ends.
      # @yieldparam message [Tasker::V1::ServerMessage]
      # @return [nil] when the server ended the stream with status OK
      # @raise [GRPC::BadStatus] when it ended with an error status (or was interrupted)
      def run(&on_message)
        op = @stub.connect(outgoing, metadata: @metadata, return_op: true)
        interrupt_now = @mutex.synchronize do
          @op = op
          @interrupted
        end
        op.cancel if interrupt_now
        op.execute.each(&on_message)
        nil
      ensure
        # Leaving early (an exception while handling a message) must not leave the call open.
        op.cancel if op && op.status.nil?
        shutdown
      end

      # Queues a message for the server.
      # @param message [Tasker::V1::WorkerMessage]
      def send_message(message)
        @queue.push(message)
      end

      # Wakes the writer to send whatever reports are waiting.
      def flush
        @queue.push(FLUSH)
      end

      # Ends our side of the stream gracefully (half-close) after what is queued.
      def finish_writes
        @queue.close(CLOSE)
      end

      # Drops the stream abruptly, as a network fault would (the call is
      # cancelled; the server sees the stream break).
      def interrupt
        op = @mutex.synchronize do
          @interrupted = true
          @op
        end
        op&.cancel
      end

      # @return [Boolean] whether {#interrupt} was called
      def interrupted?
        @mutex.synchronize { @interrupted }
      end

      # Starts queuing a Heartbeat every interval until the stream ends.
      # @param interval_ms [Integer]
      def start_heartbeats(interval_ms)
        interval_ms = DEFAULT_HEARTBEAT_MS unless interval_ms.to_i.positive?
        interval = [interval_ms.to_i, 50].max / 1000.0
        @heartbeat_thread = Thread.new do
          Thread.current.name = "tasker-heartbeat-#{@generation}"
          until wait_closed(interval)
            sent_at = Convert.to_timestamp(Time.now)
            send_message(Tasker::V1::WorkerMessage.new(heartbeat: Tasker::V1::Heartbeat.new(sent_at: sent_at)))
          end
        end
      end

      private

      # The request stream gRPC's writer thread consumes. Ends on CLOSE, or when
      # the call has a status (the server ended it, or it was cancelled).
      def outgoing
        Enumerator.new do |out|
          out << Tasker::V1::WorkerMessage.new(hello: @hello)
          loop do
            item = @queue.pop(WRITER_POLL_SECONDS)
            case item
            when nil then break if call_ended?
            when CLOSE then break
            when FLUSH
              @take_reports.call(self).each { |batch| out << Tasker::V1::WorkerMessage.new(reports: batch) }
            else out << item
            end
          end
        end
      end

      def call_ended?
        op = @mutex.synchronize { @op }
        !op.nil? && !op.status.nil?
      end

      def shutdown
        @queue.close(CLOSE)
        @mutex.synchronize do
          @closed = true
          @cond.broadcast
        end
        @heartbeat_thread&.join(1)
      end

      # @return [Boolean] true when the connection closed during the wait
      def wait_closed(seconds)
        @mutex.synchronize do
          @cond.wait(@mutex, seconds) unless @closed
          @closed
        end
      end
    end
  end
end
