# frozen_string_literal: true

require_relative 'test_helper'

class ErrorsTest < Minitest::Test
  Codes = GRPC::Core::StatusCodes

  def bad_status(code, message, metadata = {})
    GRPC::BadStatus.new_status_exception(code, message, metadata)
  end

  def test_maps_each_status_code_to_its_class
    {
      Codes::NOT_FOUND => Tasker::NotFound, Codes::INVALID_ARGUMENT => Tasker::InvalidArgument,
      Codes::ALREADY_EXISTS => Tasker::AlreadyExists, Codes::FAILED_PRECONDITION => Tasker::FailedPrecondition,
      Codes::UNAUTHENTICATED => Tasker::Unauthenticated, Codes::PERMISSION_DENIED => Tasker::PermissionDenied,
      Codes::RESOURCE_EXHAUSTED => Tasker::ResourceExhausted, Codes::UNAVAILABLE => Tasker::Unavailable,
      Codes::OUT_OF_RANGE => Tasker::OutOfRange, Codes::INTERNAL => Tasker::Internal,
      Codes::DEADLINE_EXCEEDED => Tasker::DeadlineExceeded, Codes::ABORTED => Tasker::Error
    }.each do |code, klass|
      error = Tasker::Error.from_grpc(bad_status(code, 'msg'))
      assert_instance_of klass, error
      assert_equal code, error.grpc_code
      assert_equal 'msg', error.message
      assert_kind_of Tasker::Error, error
    end
  end

  def test_reads_reason_code_and_json_details_from_trailing_metadata
    details = { kind: 'task', id: 't-1', note: 'é' }.to_json.b
    error = Tasker::Error.from_grpc(bad_status(Codes::NOT_FOUND, 'task t-1 not found',
                                               'tasker-error-code' => 'TASK_NOT_FOUND',
                                               'tasker-error-details-bin' => details))
    assert_equal 'TASK_NOT_FOUND', error.code
    assert_equal({ 'kind' => 'task', 'id' => 't-1', 'note' => 'é' }, error.details)
  end

  def test_exposes_violations_of_validation_failures
    details = { violations: [{ path: '/steps/1/depends_on/0', message: 'unknown step nope' }] }.to_json
    error = Tasker::Error.from_grpc(bad_status(Codes::INVALID_ARGUMENT, 'invalid template',
                                               'tasker-error-code' => 'VALIDATION_FAILED',
                                               'tasker-error-details-bin' => details))
    assert_equal 'VALIDATION_FAILED', error.code
    assert_equal [{ 'path' => '/steps/1/depends_on/0', 'message' => 'unknown step nope' }], error.violations
  end

  def test_tolerates_missing_or_malformed_metadata
    error = Tasker::Error.from_grpc(bad_status(Codes::INTERNAL, 'internal error'))
    assert_equal 'INTERNAL', error.code, 'the status name when the server sent no reason'
    assert_equal({}, error.details)

    error = Tasker::Error.from_grpc(bad_status(Codes::NOT_FOUND, 'x', 'tasker-error-details-bin' => '{oops'))
    assert_equal({}, error.details)
    assert_equal [], Tasker::InvalidArgument.new('x').violations
  end

  def test_translate_reraises_bad_status_as_tasker_errors
    error = assert_raises(Tasker::PermissionDenied) do
      Tasker::Error.translate { raise bad_status(Codes::PERMISSION_DENIED, 'no', 'tasker-error-code' => 'FORBIDDEN') }
    end
    assert_equal 'FORBIDDEN', error.code
  end

  def test_handler_errors
    permanent = Tasker::PermanentError.new('declined', code: 'CARD_DECLINED', details: { 'last4' => '4242' })
    refute permanent.retryable?
    assert_equal 'CARD_DECLINED', permanent.code

    retryable = Tasker::RetryableError.new('slow down', retry_after_ms: 1500.7)
    assert retryable.retryable?
    assert_equal 1500, retryable.retry_after_ms
    assert_nil Tasker::RetryableError.new('again').retry_after_ms
  end
end
