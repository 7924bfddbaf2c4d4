# frozen_string_literal: true

require 'logger'
require 'socket'
require 'grpc'
require 'tasker/version'
require 'tasker/errors'
require 'tasker/step_handler'
require 'tasker/template_builder'
require 'tasker/v1/worker_services_pb'
require 'tasker/worker/backoff'
require 'tasker/worker/connection'
require 'tasker/worker/session'
require 'tasker/worker/step_runner'
require 'tasker/worker/thread_pool'

module Tasker
  # A Tasker worker process: one session with the server, a pool of
  # `concurrency` threads running step handlers.
  #
  #   worker = Tasker::Worker.new(address: 'tasker:50051', token: ENV['TASKER_TOKEN'],
  #                               name: 'billing-1', concurrency: 10)
  #   worker.register(ChargeCard)
  #   worker.handle('payments.notify') { |step, ctx| Mailer.receipt(step.context['email']); { sent: true } }
  #   worker.run   # blocks; SIGTERM / SIGINT stop it gracefully
  #
  # The worker keeps one WorkerService.Connect stream open, reconnecting with
  # exponential backoff and jitter and resuming its session with the session
  # handle, so steps in flight survive a dropped connection. Every report is
  # kept until the server acknowledges it and resent after a reconnect.
  class Worker
    # gRPC codes after which reconnecting cannot help: configuration errors.
    FATAL_CODES = [
      GRPC::Core::StatusCodes::UNAUTHENTICATED, GRPC::Core::StatusCodes::PERMISSION_DENIED,
      GRPC::Core::StatusCodes::INVALID_ARGUMENT, GRPC::Core::StatusCodes::ALREADY_EXISTS,
      GRPC::Core::StatusCodes::UNIMPLEMENTED
    ].freeze
    # Events accepted by {#on}.
    EVENTS = %i[ready resumed stopped].freeze

    # Raised when a method is called in the wrong lifecycle state (e.g. adding
    # a handler after start).
    class StateError < StandardError; end

    # @return [String] the worker name announced in Hello
    attr_reader :name
    # @return [Integer] handlers run at once (the credit advertised)
    attr_reader :concurrency
    # @return [Logger]
    attr_reader :logger

    # @param address [String] `host:port` of the Tasker server
    # @param token [String, nil] bearer token with the `worker` role
    # @param credentials [Symbol, GRPC::Core::ChannelCredentials] `:this_channel_is_insecure`
    #   for plaintext, or channel credentials for TLS
    # @param name [String] worker name shown in ListWorkers (default `<hostname>-<pid>`)
    # @param concurrency [Integer] steps run at once
    # @param namespaces [Array<String>] only steps of these namespaces (empty = all the token covers)
    # @param labels [Hash{String => String}] free-form labels shown in ListWorkers
    # @param logger [Logger]
    # @param shutdown_grace [Numeric] seconds {#run} lets in-flight steps finish on SIGTERM
    # @param reconnect [Hash] Backoff options (`base:`, `max:`, `jitter:` in seconds / fraction)
    # @param channel_args [Hash] extra gRPC channel arguments
    # @param templates [Array<Hash, Tasker::V1::TaskTemplate>] templates shipped in Hello and
    #   registered by the server before it welcomes the worker
    def initialize(address:, name: "#{Socket.gethostname}-#{Process.pid}", token: nil,
                   credentials: :this_channel_is_insecure, concurrency: 10, namespaces: [], labels: {},
                   logger: Logger.new($stderr), shutdown_grace: 25, reconnect: {}, channel_args: {}, templates: [])
      raise ArgumentError, 'concurrency must be >= 1' unless concurrency.to_i >= 1

      @address = address
      @name = name.to_s
      @concurrency = concurrency.to_i
      @namespaces = Array(namespaces).map(&:to_s)
      @labels = labels.to_h { |k, v| [k.to_s, v.to_s] }
      @logger = logger
      @shutdown_grace = shutdown_grace
      @backoff = Backoff.new(**reconnect)
      @metadata = token ? { 'authorization' => "Bearer #{token}" } : {}
      @stub = Tasker::V1::WorkerService::Stub.new(address, credentials, channel_args: channel_args)
      @templates = Array(templates).map { |t| TemplateBuilder.build(t) }
      @handlers = {}
      @hooks = Hash.new { |h, k| h[k] = [] }
      @lock = Mutex.new
      @stopped_cond = ConditionVariable.new
      @state = :new # :new -> :running -> :stopping -> :stopped
      @closing = false
      @force = false
      @fatal = nil
      @clean = nil
      @generation = 0
    end

    # Registers a StepHandler subclass under its handler_name (or `as:`).
    # @param handler_class [Class<Tasker::StepHandler>]
    # @param as [String, nil]
    # @return [self]
    def register(handler_class, as: nil)
      name = (as || handler_class.handler_name).to_s
      add_handler(name, -> { handler_class.new })
    end

    # Registers a block as the handler for `name`; it receives (step, ctx) and
    # returns the step's result.
    # @return [self]
    def handle(name, &block)
      raise ArgumentError, 'handle needs a block' unless block

      add_handler(name.to_s, -> { BlockHandler.new(block) })
    end

    # @return [Array<String>] the handler names this worker serves
    def handler_names
      @handlers.keys
    end

    # Adds a hook: `:ready` and `:resumed` receive a {SessionInfo} each time a
    # session starts or is resumed; `:stopped` runs after a graceful stop (not
    # after the server refused the worker). Hooks run on the session thread.
    # @return [self]
    def on(event, &block)
      raise ArgumentError, "unknown event #{event.inspect} (#{EVENTS.join(', ')})" unless EVENTS.include?(event)

      @hooks[event] << block
      self
    end

    # Connects and starts processing in background threads; returns at once.
    # @return [self]
    def start
      @lock.synchronize do
        raise StateError, 'worker already started' unless @state == :new
        raise ArgumentError, 'register at least one handler before starting' if @handlers.empty?

        @state = :running
      end
      @pool = ThreadPool.new(@concurrency, logger: @logger)
      @session = Session.new(concurrency: @concurrency, logger: @logger, notify: method(:fire),
                             submit: ->(run) { @pool.post { @runner.call(run) } })
      @runner = StepRunner.new(session: @session, handlers: @handlers.dup.freeze, logger: @logger)
      @supervisor = Thread.new do
        Thread.current.name = 'tasker-session'
        supervise
      end
      self
    end

    # Starts, then blocks until the worker has stopped. SIGTERM and SIGINT
    # stop it gracefully (a second signal stops at once).
    # @raise [Tasker::Error] when the server refused the worker for good
    #   (bad token, permission, invalid Hello)
    def run
      start
      previous = %w[TERM INT].to_h { |sig| [sig, trap(sig) { Thread.new { signal_stop(sig) } }] }
      wait_until_stopped
      raise @fatal if @fatal

      self
    ensure
      previous&.each { |sig, handler| trap(sig, handler || 'DEFAULT') }
    end

    # Stops gracefully: Drain (no new steps), let in-flight steps finish and
    # their reports be acknowledged for up to `grace` seconds, cancel what is
    # left, close the stream. Blocks until stopped; safe to call twice. Called
    # from a handler, it only starts the stop (the handler's own step is one
    # of those it waits for) and returns nil.
    # @param grace [Numeric] seconds
    # @return [Boolean, nil] true when every step finished and every report was
    #   acknowledged within the grace period
    def stop(grace: @shutdown_grace, reason: 'worker stopping')
      if @pool&.thread?(Thread.current)
        Thread.new { stop(grace: grace, reason: reason) }
        return nil
      end
      action = @lock.synchronize do
        case @state
        when :new
          @state = :stopped
          :none
        when :running
          @state = :stopping
          :stop
        else :wait
        end
      end
      case action
      when :stop then graceful_stop(grace, reason)
      when :wait then wait_until_stopped && @clean
      else true
      end
    end

    # Drops the current stream as a network fault would; the worker reconnects
    # and resumes its session. Meant for tests of reconnect behaviour.
    def interrupt_connection
      @session&.interrupt
    end

    # Test switch (documented for conformance tests): the next report queued is
    # sent twice with the same report id; the server must acknowledge the copy
    # as DUPLICATE and apply it only once. Called from a handler, it applies to
    # that handler's next report (normally its completion); elsewhere, to the
    # next report of `step_id`, or of any step when none is given.
    def debug_duplicate_next_report!(step_id: nil)
      raise StateError, 'start the worker first' unless @session

      @session.duplicate_next!(step_id: step_id || StepRunner.current_step_id)
    end

    # @return [String, nil] public id of the current session
    def session_id
      @session&.session_id
    end

    # @return [Boolean] whether the worker is processing (started and not stopping)
    def running?
      @lock.synchronize { @state == :running }
    end

    private

    def add_handler(name, factory)
      raise ArgumentError, 'handler name must not be empty' if name.empty?

      @lock.synchronize do
        raise StateError, 'cannot add handlers after start' unless @state == :new

        @handlers[name] = factory
      end
      self
    end

    def base_hello
      Tasker::V1::Hello.new(worker_name: @name, language: 'ruby', sdk_version: Tasker::VERSION,
                            handlers: @handlers.keys, namespaces: @namespaces, labels: @labels,
                            templates: @templates)
    end

    # Connects, reads until the stream ends, reconnects; until closing.
    def supervise
      failures = 0
      until closing?
        conn = @session.connect(base_hello, method(:new_connection))
        error = read(conn)
        welcomed = @session.connection_ended(conn)
        break if closing?

        failures = welcomed ? 1 : failures + 1
        error = :interrupted if error && conn.interrupted?
        break unless reconnect_after?(error, failures)
      end
    rescue Exception => e # rubocop:disable Lint/RescueException -- the session thread must report any crash
      @logger.fatal("tasker: session thread crashed: #{e.class}: #{e.message}")
      @fatal ||= e
      Thread.new { stop(grace: 0) }
    end

    def new_connection(hello)
      @generation += 1
      Connection.new(stub: @stub, metadata: @metadata, hello: hello, generation: @generation,
                     take_reports: @session.method(:take_reports), logger: @logger)
    end

    # @return [Tasker::Error, StandardError, nil] why the stream ended (nil = status OK)
    def read(conn)
      conn.run { |message| @session.handle_message(conn, message) }
      nil
    rescue GRPC::BadStatus => e
      Tasker::Error.from_grpc(e)
    rescue StandardError => e
      e
    end

    # Decides what follows a stream's end; sleeps the backoff when reconnecting.
    # @return [Boolean] false when the worker must not reconnect
    def reconnect_after?(error, failures)
      if error.is_a?(Tasker::FailedPrecondition) && error.code == 'SESSION_EXPIRED'
        @session.expire!
        return true
      end
      if error.is_a?(Tasker::Error) && FATAL_CODES.include?(error.grpc_code)
        @logger.error("tasker: server refused the worker: #{error.class} #{error.code}: #{error.message}")
        @fatal = error
        Thread.new { stop(grace: 0, reason: 'refused by server') }
        return false
      end
      delay = @backoff.delay(failures)
      @logger.warn("tasker: stream ended (#{describe(error)}); reconnecting in #{format('%.2f', delay)}s")
      sleep_unless_closing(delay)
      true
    end

    def describe(error)
      case error
      when nil then 'closed by server'
      when :interrupted then 'interrupted on request'
      when Tasker::Error then "#{error.class.name} #{error.code}: #{error.message}"
      else "#{error.class}: #{error.message}"
      end
    end

    def graceful_stop(grace, reason)
      @logger.info("tasker: stopping (#{reason}); up to #{grace}s for in-flight steps")
      @session.drain!(reason, (grace * 1000).to_i)
      deadline = monotonic + grace
      clean = @session.wait_idle(deadline) { @lock.synchronize { @force } }
      @session.cancel_all('worker stopped before the step finished') unless clean
      @lock.synchronize do
        @closing = true
        @stopped_cond.broadcast
      end
      @session.close_connection
      @session.interrupt unless @supervisor.join(5)
      @supervisor.join
      @pool.shutdown(clean ? 5 : 1)
      @lock.synchronize do
        @clean = clean
        @state = :stopped
        @stopped_cond.broadcast
      end
      fire(:stopped, nil) unless @fatal
      clean
    end

    def signal_stop(signal)
      if @lock.synchronize { @state == :stopping }
        @logger.warn("tasker: SIG#{signal} again; stopping now")
        @lock.synchronize { @force = true }
        @session.wake
      else
        stop(reason: "SIG#{signal}")
      end
    end

    def wait_until_stopped
      @lock.synchronize { @stopped_cond.wait(@lock) until @state == :stopped }
      true
    end

    def closing?
      @lock.synchronize { @closing }
    end

    def sleep_unless_closing(seconds)
      deadline = monotonic + seconds
      @lock.synchronize do
        until @closing
          remaining = deadline - monotonic
          break if remaining <= 0

          @stopped_cond.wait(@lock, remaining)
        end
      end
    end

    def fire(event, info)
      @hooks[event].each do |hook|
        hook.call(info)
      rescue StandardError => e
        @logger.error("tasker: #{event} hook failed: #{e.class}: #{e.message}")
      end
    end

    def monotonic
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end
  end
end
