# frozen_string_literal: true

# Ruby conformance worker (clients/conformance/README.md).
#
#   ruby -Iclients/ruby/lib clients/ruby/conformance/worker.rb
#
# Configured only through TASKER_ADDRESS, TASKER_TOKEN, TASKER_WORKER_NAME,
# TASKER_HANDLER_PREFIX and TASKER_CONCURRENCY. Registers the handler catalog
# under "<prefix>.<name>" and writes one JSON object per line on stdout for
# each observable event (ready, resumed, cancelled, stopped); logs go to
# stderr. Exits 0 after a graceful stop on SIGTERM.

require 'json'
require 'logger'
require 'tasker'

module Conformance
  LANGUAGE = 'ruby'
  # Longest a handler waits for something the test is expected to cause.
  WAIT_SECONDS = 30

  # Writes the event lines; nothing else goes to stdout.
  class Events
    def initialize(io = $stdout)
      @io = io
      @mutex = Mutex.new
    end

    def emit(event, **fields)
      line = JSON.generate({ event: event }.merge(fields))
      @mutex.synchronize do
        @io.write("#{line}\n")
        @io.flush
      end
    end
  end

  # Counts resumed sessions so the `interrupt` handler can wait for the next one.
  class Resumptions
    def initialize
      @mutex = Mutex.new
      @cond = ConditionVariable.new
      @count = 0
    end

    def count
      @mutex.synchronize { @count }
    end

    def record
      @mutex.synchronize do
        @count += 1
        @cond.broadcast
      end
    end

    # @return [Boolean] whether a resume beyond `seen` happened in time
    def wait_beyond(seen, timeout)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
      @mutex.synchronize do
        while @count <= seen
          remaining = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
          return false if remaining <= 0

          @cond.wait(@mutex, remaining)
        end
        true
      end
    end
  end

  # Process-wide count of running `concurrency` handlers, and for each running
  # one the highest count seen while it ran.
  class ConcurrencyGauge
    def initialize
      @mutex = Mutex.new
      @running = 0
      @peaks = {}
    end

    # Runs one handler's sleep; returns the highest count seen while it ran.
    def measure(key, sleep_ms)
      @mutex.synchronize do
        @running += 1
        @peaks[key] = 0
        @peaks.each_key { |k| @peaks[k] = [@peaks[k], @running].max }
      end
      sleep(sleep_ms / 1000.0)
      @mutex.synchronize do
        @running -= 1
        peak = @peaks.delete(key)
        peak
      end
    end
  end

  # The handler catalog, as blocks registered on the worker.
  class Catalog
    def initialize(worker:, events:, resumptions:)
      @worker = worker
      @events = events
      @resumptions = resumptions
      @gauge = ConcurrencyGauge.new
    end

    # Catalog name => method implementing it.
    HANDLERS = {
      'echo' => :echo, 'flaky' => :flaky, 'permanent' => :permanent, 'raise' => :raise_boom,
      'progress' => :progress, 'wait_for_cancel' => :wait_for_cancel, 'concurrency' => :concurrency,
      'interrupt' => :interrupt, 'duplicate' => :duplicate
    }.freeze

    def register(prefix)
      HANDLERS.each do |name, method_name|
        @worker.handle("#{prefix}.#{name}") { |step, ctx| public_send(method_name, step, ctx) }
      end
    end

    def echo(step, _ctx)
      values = step.ancestor_results.values.map { |r| r.is_a?(Hash) && r['value'].is_a?(Numeric) ? r['value'] : 0 }
      { 'step' => step.step_name, 'language' => LANGUAGE, 'attempt' => step.attempt,
        'ancestors' => step.ancestor_results.keys.sort, 'value' => 1 + values.sum }
    end

    def flaky(step, _ctx)
      cfg = step.handler_config
      if step.attempt <= cfg['fail_times'].to_i
        raise Tasker::RetryableError.new("flaky failure on attempt #{step.attempt}",
                                         retry_after_ms: cfg['retry_after_ms'])
      end
      { 'attempt' => step.attempt }
    end

    def permanent(_step, _ctx)
      raise Tasker::PermanentError.new('permanent failure requested', code: 'CONFORMANCE_PERMANENT')
    end

    def raise_boom(_step, _ctx)
      raise ArgumentError, 'boom'
    end

    def progress(step, ctx)
      count = step.handler_config['count'].to_i
      (1..count).each { |i| ctx.progress({ 'i' => i }) }
      { 'count' => count }
    end

    def wait_for_cancel(step, ctx)
      ctx.progress({ 'waiting' => true })
      return { 'cancelled' => false } unless ctx.wait_for_cancellation(WAIT_SECONDS)

      @events.emit('cancelled', step_id: step.step_id)
      { 'cancelled' => true }
    end

    def concurrency(step, _ctx)
      { 'peak' => @gauge.measure(step.step_id, step.handler_config['sleep_ms'].to_i) }
    end

    def interrupt(step, _ctx)
      return { 'resumed' => false } unless step.attempt == 1

      seen = @resumptions.count
      @worker.interrupt_connection
      { 'resumed' => @resumptions.wait_beyond(seen, WAIT_SECONDS) }
    end

    # Called from the handler, the switch applies to this step's next report: its completion.
    def duplicate(_step, _ctx)
      @worker.debug_duplicate_next_report!
      { 'ok' => true }
    end
  end

  module_function

  # @return [String, nil] the variable's value, nil when unset or empty
  def setting(env, name)
    value = env[name].to_s
    value.empty? ? nil : value
  end

  def main(env = ENV)
    $stdout.sync = true
    logger = Logger.new($stderr, level: setting(env, 'TASKER_LOG_LEVEL') || 'info')
    events = Events.new
    resumptions = Resumptions.new
    worker = Tasker::Worker.new(
      address: setting(env, 'TASKER_ADDRESS') || '127.0.0.1:50051', token: setting(env, 'TASKER_TOKEN'),
      name: setting(env, 'TASKER_WORKER_NAME') || "conformance-#{LANGUAGE}",
      concurrency: Integer(setting(env, 'TASKER_CONCURRENCY') || '4'), logger: logger,
      labels: { 'suite' => 'conformance', 'language' => LANGUAGE },
      reconnect: { base: 0.05, max: 2.0 }
    )
    Catalog.new(worker: worker, events: events, resumptions: resumptions)
           .register(setting(env, 'TASKER_HANDLER_PREFIX') || "conformance.#{LANGUAGE}")
    ready = false
    worker.on(:ready) do |info|
      events.emit('ready', session_id: info.session_id) unless ready
      ready = true
    end
    worker.on(:resumed) do |info|
      events.emit('resumed', session_id: info.session_id, in_flight: info.in_flight)
      resumptions.record
    end
    worker.on(:stopped) { events.emit('stopped') }
    worker.run
    0
  end
end

exit(Conformance.main) if $PROGRAM_NAME == __FILE__
