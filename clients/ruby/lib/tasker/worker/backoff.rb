# frozen_string_literal: true

module Tasker
  class Worker
    # Reconnect delays: exponential growth from `base` seconds, capped at `max`,
    # with a random spread of +/- `jitter` (a fraction) so that many workers cut
    # off together do not reconnect in lockstep.
    #
    #   backoff = Backoff.new(base: 0.1, max: 10.0, jitter: 0.2)
    #   backoff.delay(1) # => 0.08..0.12
    #   backoff.delay(4) # => 0.64..0.96
    class Backoff
      # @return [Float] delay before the first retry, in seconds
      attr_reader :base
      # @return [Float] largest delay, in seconds
      attr_reader :max
      # @return [Float] fraction of the delay that is randomized, in [0, 1]
      attr_reader :jitter

      # @param base [Numeric] seconds before the first retry (> 0)
      # @param max [Numeric] cap in seconds (>= base)
      # @param jitter [Numeric] fraction in [0, 1]
      # @param random [Random] source of randomness (injectable for tests)
      def initialize(base: 0.1, max: 5.0, jitter: 0.2, random: Random.new)
        raise ArgumentError, 'base must be > 0' unless base.positive?
        raise ArgumentError, 'max must be >= base' if max < base
        raise ArgumentError, 'jitter must be within 0..1' unless (0..1).cover?(jitter)

        @base = base.to_f
        @max = max.to_f
        @jitter = jitter.to_f
        @random = random
      end

      # @param attempt [Integer] 1 for the first retry after a failure
      # @return [Float] seconds to wait, never above {max}
      def delay(attempt)
        attempt = 1 if attempt < 1
        # 2**62 already exceeds any sane cap; clamping the exponent keeps the
        # arithmetic in Integer range for absurd attempt counts.
        raw = [base * (2**[attempt - 1, 62].min), max].min
        spread = 1.0 + (jitter * ((2.0 * @random.rand) - 1.0))
        [raw * spread, max].min
      end
    end
  end
end
