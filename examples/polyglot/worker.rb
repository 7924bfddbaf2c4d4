# frozen_string_literal: true

# Ruby worker of the polyglot example: the `transform` step.
#
#   ruby -Iclients/ruby/lib examples/polyglot/worker.rb
#
# Reads TASKER_ADDRESS (default 127.0.0.1:50051) and TASKER_TOKEN (unset when the
# server runs with auth disabled). Prints "ready <session id>" on stdout once
# connected; logs go to stderr. SIGTERM stops it gracefully.

require 'logger'
require 'tasker'

module Polyglot
  LANGUAGE = 'ruby'

  # Scales the readings `extract` (Python) produced to 0..1 of their maximum.
  class Transform < Tasker::StepHandler
    handler_name 'polyglot.ruby.transform'

    def process(step, _ctx)
      values = step.ancestor_results.fetch('extract').fetch('values')
      max = values.max
      { 'normalized' => values.map { |v| (v.to_f / max).round(3) }, 'min' => values.min, 'max' => max }
    end

    def process_results(step, output)
      saw = step.ancestor_results.sort.to_h { |name, result| [name, result['language']] }
      output.merge('language' => LANGUAGE, 'saw' => saw)
    end
  end
end

if $PROGRAM_NAME == __FILE__
  $stdout.sync = true
  worker = Tasker::Worker.new(
    address: ENV.fetch('TASKER_ADDRESS', '127.0.0.1:50051'),
    token: ENV['TASKER_TOKEN'].to_s.empty? ? nil : ENV['TASKER_TOKEN'],
    name: 'polyglot-ruby', concurrency: 2,
    labels: { 'example' => 'polyglot', 'language' => Polyglot::LANGUAGE },
    logger: Logger.new($stderr, level: :info)
  )
  worker.register(Polyglot::Transform)
  worker.on(:ready) { |info| puts "ready #{info.session_id}" }
  worker.run
end
