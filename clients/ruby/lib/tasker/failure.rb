# frozen_string_literal: true

require 'tasker/errors'
require 'tasker/convert'
require 'tasker/v1/common_pb'

module Tasker
  # Maps an exception raised by a handler to the StepError the worker reports.
  #
  # * Tasker::PermanentError  -> retryable: false, with its code and details
  # * Tasker::RetryableError  -> retryable: true, retry_after_ms when given
  # * any other exception     -> retryable: true
  #
  # error_class is always the exception's class name (so a subclass such as
  # `class CardDeclined < Tasker::PermanentError` names itself), message is the
  # exception message, backtrace its frames innermost first, as Ruby prints them.
  module Failure
    # Frames kept from a backtrace (the server stores at most its own limit).
    DEFAULT_BACKTRACE_LIMIT = 50

    module_function

    # @param error [Exception]
    # @param backtrace_limit [Integer]
    # @return [Tasker::V1::StepError]
    def from_exception(error, backtrace_limit: DEFAULT_BACKTRACE_LIMIT)
      step_error = Tasker::V1::StepError.new(
        error_class: error.class.name || error.class.inspect,
        message: error.message.to_s.dup.force_encoding(Encoding::UTF_8).scrub,
        backtrace: Array(error.backtrace).first(backtrace_limit),
        retryable: retryable?(error)
      )
      return step_error unless error.is_a?(Tasker::HandlerError)

      step_error.code = error.code.to_s if error.code
      step_error.details_json = Convert.to_json_bytes(error.details) unless error.details.nil?
      if error.is_a?(Tasker::RetryableError) && error.retry_after_ms
        step_error.retry_after_ms = error.retry_after_ms
      end
      step_error
    end

    # @param error [Exception]
    # @return [Boolean]
    def retryable?(error)
      error.is_a?(Tasker::HandlerError) ? error.retryable? : true
    end
  end
end
