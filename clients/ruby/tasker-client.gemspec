# frozen_string_literal: true

require_relative 'lib/tasker/version'

Gem::Specification.new do |spec|
  spec.name = 'tasker-client'
  spec.version = Tasker::VERSION
  spec.summary = 'Ruby workers and application client for the Tasker workflow orchestrator'
  spec.description = <<~DESC
    Run Tasker step handlers in Ruby (Sidekiq-style worker over one resumable gRPC
    session, with acknowledged, resent reports) and create, inspect, repair and watch
    Tasker tasks from Ruby applications.
  DESC
  spec.license = 'MIT'
  spec.authors = ['Tasker contributors']
  spec.required_ruby_version = '>= 3.1'

  spec.files = Dir['lib/**/*.rb', 'conformance/*.rb', 'README.md', 'tasker-client.gemspec']
  spec.require_paths = ['lib']

  spec.add_dependency 'google-protobuf', '>= 3.21', '< 5'
  spec.add_dependency 'grpc', '~> 1.51'

  spec.metadata['rubygems_mfa_required'] = 'true'
end
