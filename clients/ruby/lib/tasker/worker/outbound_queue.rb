# frozen_string_literal: true

module Tasker
  class Worker
    # A FIFO whose pop waits at most a given time (Ruby 3.1's Queue#pop cannot
    # time out). The stream writer polls it so it notices a call that ended
    # while nothing was being written.
    class OutboundQueue
      def initialize
        @mutex = Mutex.new
        @cond = ConditionVariable.new
        @items = []
        @closed = false
      end

      # Appends an item; ignored once closed.
      # @return [Boolean] whether the item was queued
      def push(item)
        @mutex.synchronize do
          return false if @closed

          @items << item
          @cond.signal
          true
        end
      end

      # Appends a final item; later pushes are ignored.
      def close(final_item)
        @mutex.synchronize do
          return if @closed

          @items << final_item
          @closed = true
          @cond.signal
        end
      end

      # @param timeout [Numeric] seconds
      # @return [Object, nil] the next item, or nil when none arrived in time
      def pop(timeout)
        deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
        @mutex.synchronize do
          while @items.empty?
            remaining = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
            return nil if remaining <= 0

            @cond.wait(@mutex, remaining)
          end
          @items.shift
        end
      end
    end
  end
end
