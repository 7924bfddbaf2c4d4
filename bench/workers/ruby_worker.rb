# frozen_string_literal: true

# A no-op Ruby worker for the benchmarks (the Ruby SDK's Tasker::Worker).
#
#   ruby -Iclients/ruby/lib bench/workers/ruby_worker.rb
#
# Environment: BENCH_ADDRESS (host:port), BENCH_HANDLERS (comma-separated),
# BENCH_CONCURRENCY (default 64), BENCH_NAME. Prints {"event":"ready"} once the
# session is welcomed and {"event":"stopped",...} after a graceful stop on SIGTERM.

require 'json'
require 'logger'
require 'tasker'

$stdout.sync = true
handled = 0
count_lock = Mutex.new
worker = Tasker::Worker.new(
  address: ENV.fetch('BENCH_ADDRESS', '127.0.0.1:50051'),
  name: ENV.fetch('BENCH_NAME', "bench-ruby-#{Process.pid}"),
  concurrency: Integer(ENV.fetch('BENCH_CONCURRENCY', '64')),
  logger: Logger.new($stderr, level: :warn),
  shutdown_grace: 10
)
ENV.fetch('BENCH_HANDLERS', 'bench.noop').split(',').reject(&:empty?).each do |name|
  worker.handle(name) do |_step, _ctx|
    count_lock.synchronize { handled += 1 }
    nil
  end
end
announced = false
worker.on(:ready) do |_info|
  puts JSON.generate({ event: 'ready', pid: Process.pid }) unless announced
  announced = true
end
worker.run
puts JSON.generate({ event: 'stopped', handled: handled })
exit 0
