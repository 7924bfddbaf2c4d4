# frozen_string_literal: true

require_relative 'test_helper'

class BackoffTest < Minitest::Test
  # A Random stand-in returning fixed values, so delays are exact.
  FixedRandom = Struct.new(:value) do
    def rand
      value
    end
  end

  def backoff(random_value, **opts)
    Tasker::Worker::Backoff.new(random: FixedRandom.new(random_value), **{ base: 0.1, max: 10.0, jitter: 0.2 }.merge(opts))
  end

  def test_grows_exponentially_without_jitter_at_the_midpoint
    b = backoff(0.5)
    assert_equal [0.1, 0.2, 0.4, 0.8, 1.6], (1..5).map { |n| b.delay(n).round(6) }
  end

  def test_jitter_spreads_the_delay_both_ways
    assert_in_delta 0.08, backoff(0.0).delay(1), 1e-9
    assert_in_delta 0.12, backoff(1.0).delay(1), 1e-9
  end

  def test_is_capped_at_max_even_with_jitter_and_huge_attempt_numbers
    assert_in_delta 10.0, backoff(1.0).delay(30), 1e-9
    assert_in_delta 8.0, backoff(0.0).delay(10_000), 1e-9
  end

  def test_attempts_below_one_count_as_the_first
    assert_in_delta 0.1, backoff(0.5).delay(0), 1e-9
  end

  def test_delays_stay_within_bounds_with_real_randomness
    b = Tasker::Worker::Backoff.new(base: 0.05, max: 2.0, jitter: 0.5)
    200.times do |i|
      attempt = (i % 10) + 1
      nominal = [0.05 * (2**(attempt - 1)), 2.0].min
      delay = b.delay(attempt)
      assert_operator delay, :>=, nominal * 0.5 - 1e-9
      assert_operator delay, :<=, 2.0
    end
  end

  def test_rejects_invalid_settings
    assert_raises(ArgumentError) { Tasker::Worker::Backoff.new(base: 0) }
    assert_raises(ArgumentError) { Tasker::Worker::Backoff.new(base: 2, max: 1) }
    assert_raises(ArgumentError) { Tasker::Worker::Backoff.new(jitter: 1.5) }
  end
end
