# frozen_string_literal: true

require_relative 'test_helper'

class FailureTest < Minitest::Test
  class CardDeclined < Tasker::PermanentError; end

  def raised(error)
    raise error
  rescue StandardError => e
    e
  end

  def test_ordinary_exceptions_are_retryable_with_class_message_and_backtrace
    error = Tasker::Failure.from_exception(raised(ArgumentError.new('boom')))
    assert_equal 'ArgumentError', error.error_class
    assert_equal 'boom', error.message
    assert error.retryable
    refute error.has_retry_after_ms?
    assert_match(/failure_test\.rb:\d+:in `raised'/, error.backtrace.first, 'innermost frame first')
    assert_equal '', error.code
  end

  def test_permanent_errors_are_not_retryable_and_carry_code_and_details
    error = Tasker::Failure.from_exception(
      raised(Tasker::PermanentError.new('permanent failure requested', code: 'CONFORMANCE_PERMANENT',
                                                                       details: { 'why' => 'asked' }))
    )
    assert_equal 'Tasker::PermanentError', error.error_class
    refute error.retryable
    assert_equal 'CONFORMANCE_PERMANENT', error.code
    assert_equal({ 'why' => 'asked' }, JSON.parse(error.details_json))
  end

  def test_subclasses_name_themselves
    error = Tasker::Failure.from_exception(raised(CardDeclined.new('declined')))
    assert_equal 'FailureTest::CardDeclined', error.error_class
    refute error.retryable
  end

  def test_retryable_errors_carry_retry_after
    error = Tasker::Failure.from_exception(raised(Tasker::RetryableError.new('later', retry_after_ms: 250)))
    assert error.retryable
    assert error.has_retry_after_ms?
    assert_equal 250, error.retry_after_ms

    zero = Tasker::Failure.from_exception(raised(Tasker::RetryableError.new('now', retry_after_ms: 0)))
    assert zero.has_retry_after_ms?, 'zero means retry at once, which differs from unset'
  end

  def test_backtrace_is_limited_and_invalid_utf8_is_scrubbed
    error = RuntimeError.new("bad \xff bytes".b)
    error.set_backtrace(Array.new(100) { |i| "frame #{i}" })
    mapped = Tasker::Failure.from_exception(error, backtrace_limit: 5)
    assert_equal ['frame 0', 'frame 1', 'frame 2', 'frame 3', 'frame 4'], mapped.backtrace
    assert mapped.message.valid_encoding?
  end

  def test_payload_too_large_is_a_permanent_failure_with_its_code
    mapped = Tasker::Failure.from_exception(raised(Tasker::PayloadTooLarge.new('too big')))
    assert_equal ['Tasker::PayloadTooLarge', 'PAYLOAD_TOO_LARGE', false],
                 [mapped.error_class, mapped.code, mapped.retryable]
  end

  def test_exceptions_without_backtrace
    mapped = Tasker::Failure.from_exception(NotImplementedError.new('todo'))
    assert_equal 'NotImplementedError', mapped.error_class
    assert_equal [], mapped.backtrace.to_a
  end
end
