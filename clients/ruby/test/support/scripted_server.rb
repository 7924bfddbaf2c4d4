# frozen_string_literal: true

require 'grpc'
require 'tasker/v1/worker_services_pb'
require 'tasker/worker/outbound_queue'

# A WorkerService peer driven by the test, on a real socket (127.0.0.1:0):
# every stream the worker opens shows up as a ScriptedServer::Stream from
# which the test reads what the worker sent and to which it writes what the
# server says. It checks the worker's side of the session protocol; the real
# server's behaviour is covered by the conformance suite.
class ScriptedServer
  # How long a test waits for something the worker is expected to do.
  WAIT_SECONDS = 10

  # One Connect stream.
  class Stream
    attr_reader :metadata

    def initialize(metadata)
      @metadata = metadata
      @received = Tasker::Worker::OutboundQueue.new
      @outgoing = Queue.new
    end

    # @api private
    def outgoing
      @outgoing
    end

    # @api private
    def deliver(message)
      @received.push(message)
    end

    # Next message from the worker, skipping heartbeats (unless asked for).
    # Returns :closed once the worker ended its side.
    def next_message(skip: [:heartbeat], timeout: WAIT_SECONDS)
      deadline = Time.now + timeout
      loop do
        remaining = deadline - Time.now
        raise "no message from the worker within #{timeout}s" if remaining <= 0

        message = pop(remaining)
        next if message.is_a?(Tasker::V1::WorkerMessage) && skip.include?(message.kind)

        return message
      end
    end

    # Collects report messages until the block, given every StepReport so far,
    # returns true. Returns [reports, batch_completions].
    def reports_until(timeout: WAIT_SECONDS)
      reports = []
      batches = []
      deadline = Time.now + timeout
      until yield(reports, batches)
        message = next_message(skip: %i[heartbeat credit], timeout: [deadline - Time.now, 0.01].max)
        raise "stream ended while waiting for reports (got #{reports.map(&:kind)})" if message == :closed
        next unless message.kind == :reports

        reports.concat(message.reports.reports.to_a)
        batches.concat(message.reports.batches.to_a)
      end
      [reports, batches]
    end

    def send_message(**kind)
      @outgoing << Tasker::V1::ServerMessage.new(**kind)
    end

    def welcome(session_id: 'sess-1', handle: 'handle-1', resumed: false, in_flight: [], heartbeat_ms: 60_000,
                max_report_bytes: 0)
      send_message(welcome: Tasker::V1::Welcome.new(
        session_id: session_id, session_handle: handle, resumed: resumed, heartbeat_interval_ms: heartbeat_ms,
        lease_ms: 30_000, in_flight: in_flight, server_instance: 'scripted', max_report_bytes: max_report_bytes
      ))
    end

    def ack(reports, status: :ACK_STATUS_ACCEPTED, reason: :REJECT_REASON_UNSPECIFIED)
      acks = reports.map do |r|
        Tasker::V1::ResultAck.new(report_id: r.report_id, step_id: r.step_id, attempt: r.attempt, status: status,
                                  reason: reason)
      end
      send_message(acks: Tasker::V1::AckBatch.new(acks: acks))
    end

    # Ends the stream with status OK, or with the given GRPC::BadStatus.
    def finish(error = nil)
      @outgoing << (error || :end)
    end

    private

    def pop(timeout)
      message = @received.pop(timeout)
      raise "no message from the worker within #{timeout}s" if message.nil?

      message
    end
  end

  # The service implementation handing streams to the test.
  class Service < Tasker::V1::WorkerService::Service
    def initialize(streams)
      super()
      @streams = streams
    end

    def connect(requests, call)
      stream = Stream.new(call.metadata)
      Thread.new do
        requests.each { |m| stream.deliver(m) }
      rescue StandardError
        nil
      ensure
        stream.deliver(:closed)
        stream.finish
      end
      @streams.push(stream)
      Enumerator.new do |out|
        loop do
          item = stream.outgoing.pop
          break if item == :end
          raise item if item.is_a?(Exception)

          out << item
        end
      end
    end
  end

  attr_reader :port

  def initialize
    @streams = Tasker::Worker::OutboundQueue.new
    @server = GRPC::RpcServer.new(pool_size: 8)
    @port = @server.add_http2_port('127.0.0.1:0', :this_port_is_insecure)
    @server.handle(Service.new(@streams))
    @thread = Thread.new { @server.run }
    @server.wait_till_running(WAIT_SECONDS)
  end

  def address
    "127.0.0.1:#{@port}"
  end

  # The next stream the worker opens.
  def next_stream(timeout: WAIT_SECONDS)
    stream = @streams.pop(timeout)
    raise "the worker opened no stream within #{timeout}s" if stream.nil?

    stream
  end

  def stop
    @server.stop
    @thread.join(WAIT_SECONDS)
  end
end
