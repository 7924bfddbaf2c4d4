# frozen_string_literal: true

require 'json'
require 'grpc'

module Tasker
  # Base of every error the Tasker server returns on purpose.
  #
  # The server answers a refused call with a standard gRPC status plus, in
  # trailing metadata, a stable reason (`tasker-error-code`, e.g.
  # `TASK_NOT_FOUND`) and safe structured details (`tasker-error-details-bin`,
  # UTF-8 JSON). {Tasker::Error.from_grpc} turns that back into one of the
  # subclasses below, so callers rescue by condition:
  #
  #   begin
  #     client.get_task(id)
  #   rescue Tasker::NotFound => e
  #     e.code     # => "TASK_NOT_FOUND"
  #     e.details  # => {"kind" => "task", "id" => "..."}
  #   end
  class Error < StandardError
    # Trailing-metadata key carrying the stable reason code.
    CODE_KEY = 'tasker-error-code'
    # Trailing-metadata key carrying the JSON details.
    DETAILS_KEY = 'tasker-error-details-bin'

    # @return [String, nil] stable UPPER_SNAKE_CASE reason, e.g. "TASK_NOT_FOUND";
    #   the status name ("UNAVAILABLE", "INTERNAL") when the server sent none
    attr_reader :code
    # @return [Integer] the gRPC status code (GRPC::Core::StatusCodes)
    attr_reader :grpc_code
    # @return [Hash] structured details (string keys); empty when none
    attr_reader :details

    # @param message [String] human-readable message (the status details)
    # @param code [String, nil] Tasker reason code
    # @param grpc_code [Integer] gRPC status code
    # @param details [Hash] structured details
    def initialize(message = nil, code: nil, grpc_code: GRPC::Core::StatusCodes::UNKNOWN, details: {})
      super(message)
      @code = code
      @grpc_code = grpc_code
      @details = details || {}
    end

    # Converts a GRPC::BadStatus raised by a stub into the matching Tasker error.
    #
    # @param status [GRPC::BadStatus]
    # @return [Tasker::Error] an instance of the subclass for the status code
    def self.from_grpc(status)
      metadata = status.metadata || {}
      klass = GRPC_CLASSES.fetch(status.code, Error)
      klass.new(status.details.to_s,
                code: metadata_string(metadata[CODE_KEY]) || STATUS_NAMES[status.code],
                grpc_code: status.code,
                details: parse_details(metadata[DETAILS_KEY]))
    end

    # Runs the block and re-raises any GRPC::BadStatus as a Tasker::Error.
    def self.translate
      yield
    rescue GRPC::BadStatus => e
      raise from_grpc(e)
    end

    def self.metadata_string(value)
      value = value.first if value.is_a?(Array)
      value.nil? || value.empty? ? nil : value.to_s
    end
    private_class_method :metadata_string

    def self.parse_details(raw)
      raw = raw.first if raw.is_a?(Array)
      return {} if raw.nil? || raw.empty?

      parsed = JSON.parse(raw.dup.force_encoding(Encoding::UTF_8))
      parsed.is_a?(Hash) ? parsed : { 'value' => parsed }
    rescue JSON::ParserError
      {}
    end
    private_class_method :parse_details
  end

  # Raised when the task, step or template named does not exist (NOT_FOUND).
  class NotFound < Error; end

  # Raised when the request is malformed or fails validation (INVALID_ARGUMENT).
  class InvalidArgument < Error
    # @return [Array<Hash>] each `{"path" => "...", "message" => "..."}`, for
    #   reason VALIDATION_FAILED; empty otherwise
    def violations
      Array(details['violations'])
    end
  end

  # Raised when a template version is registered again with a different body (ALREADY_EXISTS).
  class AlreadyExists < Error; end

  # Raised when the current state forbids the operation, e.g. retrying a
  # complete step, or resuming an expired session (FAILED_PRECONDITION).
  class FailedPrecondition < Error; end

  # Raised when the token is missing or unknown (UNAUTHENTICATED).
  class Unauthenticated < Error; end

  # Raised when the token lacks the role or namespace needed (PERMISSION_DENIED).
  class PermissionDenied < Error; end

  # Raised when a server limit was hit (RESOURCE_EXHAUSTED).
  class ResourceExhausted < Error; end

  # Raised when the server cannot be reached or is shutting down (UNAVAILABLE);
  # safe to retry.
  class Unavailable < Error; end

  # Raised when a SubscribeEvents cursor points at events no longer retained (OUT_OF_RANGE).
  class OutOfRange < Error; end

  # Raised when the call's deadline passed before the server answered (DEADLINE_EXCEEDED).
  class DeadlineExceeded < Error; end

  # Raised for INTERNAL and UNKNOWN statuses; the server never puts internal
  # detail in them.
  class Internal < Error; end

  class Error
    codes = GRPC::Core::StatusCodes
    # gRPC status code => its name, e.g. 14 => "UNAVAILABLE".
    STATUS_NAMES = codes.constants.to_h { |name| [codes.const_get(name), name.to_s] }.freeze
    # gRPC status code => Tasker error class; codes not listed map to Tasker::Error.
    GRPC_CLASSES = {
      codes::NOT_FOUND => NotFound,
      codes::INVALID_ARGUMENT => InvalidArgument,
      codes::ALREADY_EXISTS => AlreadyExists,
      codes::FAILED_PRECONDITION => FailedPrecondition,
      codes::UNAUTHENTICATED => Unauthenticated,
      codes::PERMISSION_DENIED => PermissionDenied,
      codes::RESOURCE_EXHAUSTED => ResourceExhausted,
      codes::UNAVAILABLE => Unavailable,
      codes::OUT_OF_RANGE => OutOfRange,
      codes::DEADLINE_EXCEEDED => DeadlineExceeded,
      codes::INTERNAL => Internal,
      codes::UNKNOWN => Internal
    }.freeze
  end

  # Base of the errors a step handler raises on purpose to shape its failure.
  # Any other exception a handler raises is reported as a retryable failure
  # with the exception's class name, message and backtrace.
  class HandlerError < StandardError
    # @return [String, nil] application reason code, e.g. "CARD_DECLINED"
    attr_reader :code
    # @return [Hash, nil] JSON-serializable details stored with the failure
    attr_reader :details

    # @param message [String]
    # @param code [String, nil] application-defined machine-readable code
    # @param details [Hash, nil] JSON-serializable details
    def initialize(message = nil, code: nil, details: nil)
      super(message)
      @code = code
      @details = details
    end

    # @return [Boolean] whether another attempt may succeed
    def retryable?
      true
    end
  end

  # Raised by a handler when retrying cannot help (bad input, declined card):
  # the step becomes `error` at once, whatever attempts remain.
  #
  #   raise Tasker::PermanentError.new('card declined', code: 'CARD_DECLINED')
  class PermanentError < HandlerError
    # @return [false]
    def retryable?
      false
    end
  end

  # Raised by a handler to ask for another attempt, optionally after a given
  # delay that replaces the step's computed backoff.
  #
  #   raise Tasker::RetryableError.new('rate limited', retry_after_ms: 30_000)
  class RetryableError < HandlerError
    # @return [Integer, nil] delay before the next attempt, in milliseconds
    attr_reader :retry_after_ms

    # @param message [String]
    # @param retry_after_ms [Integer, nil] delay before the next attempt; nil =
    #   use the step's retry policy
    # @param code [String, nil]
    # @param details [Hash, nil]
    def initialize(message = nil, retry_after_ms: nil, code: nil, details: nil)
      super(message, code: code, details: details)
      @retry_after_ms = retry_after_ms&.to_i
    end
  end

  # Raised by {Tasker::StepContext#check_cancelled!} once the step was
  # cancelled (its task was cancelled, or the worker lost the step). A handler
  # that lets it escape ends quietly: nothing is reported, since the server
  # has already settled the step.
  class Cancelled < StandardError; end

  # Raised by {Tasker::StepContext#progress} when a progress payload cannot fit
  # in one report (Welcome.max_report_bytes). Left unrescued, it fails the step
  # permanently with code PAYLOAD_TOO_LARGE.
  class PayloadTooLarge < PermanentError
    # @param message [String]
    def initialize(message = nil, code: 'PAYLOAD_TOO_LARGE', details: nil)
      super(message, code: code, details: details)
    end
  end
end
