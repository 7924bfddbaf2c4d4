# frozen_string_literal: true

# Tasker client for Ruby: workers that run step handlers, and the application
# client that creates and watches tasks.
#
#   require 'tasker'
#
#   worker = Tasker::Worker.new(address: 'localhost:50051', name: 'demo')
#   worker.handle('demo.hello') { |step, _ctx| { greeting: "hello #{step.context['name']}" } }
#   worker.run
#
# Module map (shared with the Node and Python clients): Tasker::Client
# (client), Tasker::Worker (worker), Tasker::Error and friends (errors),
# Tasker::StepHandler / Tasker::Step / Tasker::StepContext (handler).
require 'tasker/version'
require 'tasker/errors'
require 'tasker/convert'
require 'tasker/models'
require 'tasker/step'
require 'tasker/step_context'
require 'tasker/step_handler'
require 'tasker/failure'
require 'tasker/template_builder'
require 'tasker/client'
require 'tasker/worker'
