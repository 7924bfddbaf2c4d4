# frozen_string_literal: true

require 'logger'

module Tasker
  # Wraps a Logger so that every line carries a fixed tag, e.g.
  # `[payments.charge step_id=... attempt=2 correlation_id=...]`.
  class TaggedLogger
    # @return [Logger] the wrapped logger
    attr_reader :logger
    # @return [String] the tag prepended to every message
    attr_reader :tag

    # @param logger [Logger]
    # @param tag [String]
    def initialize(logger, tag)
      @logger = logger
      @tag = tag
    end

    %i[debug info warn error fatal unknown].each do |level|
      define_method(level) do |message = nil, &block|
        @logger.public_send(level) { "#{@tag} #{message || block&.call}" }
      end

      define_method(:"#{level}?") { @logger.public_send(:"#{level}?") }
    end

    # Logger#add compatible entry point.
    def add(severity, message = nil, progname = nil, &block)
      text = message || block&.call || progname
      @logger.add(severity) { "#{@tag} #{text}" }
    end
    alias log add
  end
end
