# frozen_string_literal: true

module Tasker
  class Worker
    # A fixed set of threads running posted jobs in order of arrival (the
    # Sidekiq "processors"). The worker never has more steps than threads
    # open on the server (its credit), so the queue stays short.
    class ThreadPool
      # @param size [Integer] number of threads
      # @param logger [Logger]
      def initialize(size, logger:)
        @queue = Queue.new
        @logger = logger
        @threads = Array.new(size) do |i|
          Thread.new do
            Thread.current.name = "tasker-processor-#{i + 1}"
            work
          end
        end
      end

      # @return [Boolean] whether `thread` is one of the pool's threads
      def thread?(thread)
        @threads.include?(thread)
      end

      # Queues a job.
      def post(&job)
        @queue.push(job)
      end

      # Lets queued jobs finish, then ends the threads.
      # @param timeout [Numeric] seconds to wait for the threads in total
      # @return [Boolean] whether every thread ended in time
      def shutdown(timeout)
        @threads.size.times { @queue.push(nil) }
        deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
        @threads.all? do |t|
          t.join([deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC), 0].max)
        end
      end

      private

      def work
        while (job = @queue.pop)
          begin
            job.call
          rescue Exception => e # rubocop:disable Lint/RescueException -- a processor thread must survive any job
            @logger.error("tasker: job crashed its processor: #{e.class}: #{e.message}")
          end
        end
      end
    end
  end
end
