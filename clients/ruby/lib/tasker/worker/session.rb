# frozen_string_literal: true

require 'tasker/v1/worker_pb'
require 'tasker/worker/run_ledger'

module Tasker
  class Worker
    # What a new or resumed session looks like, passed to `worker.on(:ready)`
    # and `worker.on(:resumed)` hooks.
    SessionInfo = Struct.new(:session_id, :resumed, :in_flight, :server_instance, keyword_init: true)

    # The worker's side of one session (worker.proto, "Session protocol"): the
    # session handle, the connection reports go to, credit and draining, and
    # the handling of every ServerMessage. The steps held and the reports not
    # yet acknowledged live in its {RunLedger}. It outlives connections: a
    # resumed Welcome re-attaches it to a new one.
    #
    # Locking: one mutex guards every field, the ledger and every StepRun; the
    # report buffer and batch tracker have their own locks, always taken inside
    # this one, never around it. Handlers never run under it.
    class Session
      # @param concurrency [Integer] steps the worker runs at once (its credit)
      # @param logger [Logger]
      # @param submit [#call] called with a StepRun to schedule its handler
      # @param notify [#call] called with (event, SessionInfo) for :ready / :resumed
      def initialize(concurrency:, logger:, submit:, notify:)
        @concurrency = concurrency
        @logger = logger
        @submit = submit
        @notify = notify
        @mutex = Mutex.new
        @changed = ConditionVariable.new
        @ledger = RunLedger.new(logger: logger)
        @handle = nil
        @session_id = nil
        @active = nil    # the welcomed connection reports go to
        @current = nil   # the latest connection, welcomed or not
        @advertised = 0  # credit last announced
        @draining = false
        @drain_grace_ms = 0
        @server_draining = false
      end

      # @return [String, nil] public id of the current session
      def session_id
        @mutex.synchronize { @session_id }
      end

      # Completes the worker's Hello for a new connection and remembers the
      # connection as the current one.
      # @param base [Tasker::V1::Hello] name, language, handlers, namespaces, labels, templates
      # @param connection_factory [#call] builds the Connection from the final Hello
      # @return [Connection]
      def connect(base, connection_factory)
        @mutex.synchronize do
          hello = base.dup
          hello.resume_handle = @handle.to_s
          hello.max_in_flight = @advertised = open_slots
          @current = connection_factory.call(hello)
        end
      end

      # Dispatches one ServerMessage received on `conn`.
      def handle_message(conn, message)
        case message.kind
        when :welcome then on_welcome(conn, message.welcome)
        when :batch then on_batch(message.batch)
        when :acks then change { @ledger.apply_acks(message.acks.acks) }
        when :cancel then on_cancel(message.cancel)
        when :drain then on_server_drain(conn, message.drain)
        else @logger.warn("tasker: ignoring unknown server message #{message.kind.inspect}")
        end
      end

      # Called when `conn`'s stream has ended.
      # @return [Boolean] whether that connection had been welcomed
      def connection_ended(conn)
        @mutex.synchronize do
          @current = nil if @current.equal?(conn)
          return false unless @active.equal?(conn)

          @active = nil
          @server_draining = false
          true
        end
      end

      # The server no longer knows the session (SESSION_EXPIRED): it released
      # every step the session held, so drop them all with the unacknowledged
      # reports and forget the handle; the next Hello starts a new session.
      def expire!
        change do
          discarded = @ledger.discard
          @logger.warn("tasker: session #{@session_id} expired; #{discarded} unacknowledged reports dropped, " \
                       'the server re-runs their steps')
          @handle = nil
          @session_id = nil
        end
      end

      # Called by the stream writer: the reports to write now on `conn`.
      # @return [Array<Tasker::V1::ReportBatch>]
      def take_reports(conn)
        @mutex.synchronize { @active.equal?(conn) ? @ledger.buffer.take : [] }
      end

      # --- from pool threads (see RunLedger) --------------------------------------

      # @return [Boolean] false when the run was dropped before it started
      def begin_run(run, ctx)
        @mutex.synchronize { @ledger.begin_run(run, ctx) }
      end

      # Queues a non-final report, e.g. `report(run, started: StepStarted.new)`.
      def report(run, **kind)
        change { !@ledger.report(run, kind).nil? }
      end

      # Queues a StepProgress. @raise [Tasker::PayloadTooLarge]
      def report_progress(run, payload)
        change { !@ledger.report_progress(run, payload).nil? }
      end

      # Queues the final report (completed or failed).
      def report_final(run, **kind)
        change { !@ledger.report_final(run, kind).nil? }
      end

      # Called when the run's handler has returned (or the run was skipped).
      def finish_run(run)
        change { @ledger.finish_run(run) }
      end

      # --- stopping ------------------------------------------------------------

      # Asks the server for no new steps (Drain), now and on every later Welcome.
      def drain!(reason, grace_ms)
        @mutex.synchronize do
          @draining = true
          @drain_grace_ms = grace_ms
          @active&.send_message(drain_message(reason))
        end
      end

      # @return [Boolean] whether every held step is settled and every report acknowledged
      def idle?
        @mutex.synchronize { @ledger.idle? }
      end

      # Waits until {#idle?}, the block returns true, or the deadline (monotonic seconds) passes.
      # @return [Boolean] whether the session became idle
      def wait_idle(deadline, &abort)
        @mutex.synchronize do
          until @ledger.idle? || abort&.call
            remaining = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
            break if remaining <= 0

            @changed.wait(@mutex, [remaining, 0.5].min)
          end
          @ledger.idle?
        end
      end

      # Wakes {#wait_idle} so it re-checks its abort condition.
      def wake
        @mutex.synchronize { @changed.broadcast }
      end

      # Cancels every step still held (the worker is stopping past its grace).
      def cancel_all(reason)
        change { @ledger.drop_all(reason) }
      end

      # Half-closes the welcomed stream, or drops a stream still waiting for Welcome.
      def close_connection
        @mutex.synchronize do
          if @active
            @active.finish_writes
          else
            @current&.interrupt
          end
        end
      end

      # Drops the current stream as a network fault would.
      def interrupt
        @mutex.synchronize { @current }&.interrupt
      end

      # @see ReportBuffer#duplicate_next!
      def duplicate_next!(step_id: nil)
        @ledger.buffer.duplicate_next!(step_id: step_id)
      end

      private

      # Runs the block under the lock, then sends what it queued, updates the
      # credit and wakes waiters. Returns the block's value.
      def change
        @mutex.synchronize do
          result = yield
          @active.flush if @active && @ledger.buffer.unsent?
          update_credit_locked
          @changed.broadcast
          finish_server_drain_locked
          result
        end
      end

      def on_welcome(conn, welcome)
        info = @mutex.synchronize do
          if welcome.resumed
            @ledger.reconcile(welcome.in_flight)
          elsif @handle
            @ledger.discard # a new session although we held one: the old one is gone
          end
          @handle = welcome.session_handle
          @session_id = welcome.session_id
          @ledger.buffer.max_bytes = welcome.max_report_bytes
          attach_locked(conn, welcome.heartbeat_interval_ms)
          SessionInfo.new(session_id: welcome.session_id, resumed: welcome.resumed,
                          in_flight: welcome.in_flight.size, server_instance: welcome.server_instance)
        end
        @logger.info("tasker: session #{info.session_id} #{info.resumed ? 'resumed' : 'started'} " \
                     "on #{info.server_instance} (#{info.in_flight} in flight)")
        @notify.call(info.resumed ? :resumed : :ready, info)
      end

      # Makes `conn` the stream reports go to: resend everything unacknowledged
      # (in id order), start heartbeats, repeat a Drain already asked for.
      def attach_locked(conn, heartbeat_interval_ms)
        @active = conn
        @ledger.buffer.requeue
        conn.start_heartbeats(heartbeat_interval_ms)
        conn.flush
        conn.send_message(drain_message('worker stopping')) if @draining
        update_credit_locked
      end

      def on_batch(batch)
        runs = @mutex.synchronize { @ledger.add_batch(batch) }
        runs.each { |run| @submit.call(run) }
      end

      def on_cancel(cancel)
        change { @ledger.cancel(cancel.steps, cancel.reason.empty? ? 'task cancelled' : cancel.reason) }
      end

      def on_server_drain(conn, drain)
        @logger.info("tasker: server draining (#{drain.reason}); finishing held steps, then reconnecting")
        @mutex.synchronize do
          @server_draining = true if @active.equal?(conn)
          finish_server_drain_locked
        end
      end

      # Once a draining server holds nothing of ours, end the stream; the
      # worker reconnects (with the handle) to another instance.
      def finish_server_drain_locked
        @active.finish_writes if @server_draining && @active && @ledger.idle?
      end

      def open_slots
        return 0 if @draining

        [@concurrency - @ledger.zombie_count, 0].max
      end

      # Announces a new credit when dropped-but-still-running handlers (which
      # the server no longer counts) take threads, or give them back. Not while
      # draining: Drain already stops new steps.
      def update_credit_locked
        slots = open_slots
        return if @active.nil? || @draining || slots == @advertised

        @advertised = slots
        @active.send_message(Tasker::V1::WorkerMessage.new(credit: Tasker::V1::Credit.new(slots: slots)))
      end

      def drain_message(reason)
        Tasker::V1::WorkerMessage.new(drain: Tasker::V1::Drain.new(reason: reason, grace_ms: @drain_grace_ms))
      end
    end
  end
end
