# frozen_string_literal: true

require_relative 'test_helper'

class BatchTrackerTest < Minitest::Test
  def test_completes_a_batch_when_every_step_settled_with_counts
    tracker = Tasker::Worker::BatchTracker.new
    tracker.add('b1', %w[a b c])
    assert_nil tracker.settle('b1', 'a', :completed)
    assert_nil tracker.settle('b1', 'b', :failed)
    assert_nil tracker.settle('b1', 'b', :completed), 'a step settles once'
    done = tracker.settle('b1', 'c', :dropped)
    assert_equal ['b1', 1, 1], [done.batch_id, done.completed, done.failed]
    assert_equal 0, tracker.open_count
  end

  def test_unknown_batches_and_steps_are_ignored
    tracker = Tasker::Worker::BatchTracker.new
    assert_nil tracker.settle('nope', 'a', :completed)
    tracker.add('b1', ['a'])
    assert_nil tracker.settle('b1', 'zzz', :completed)
    tracker.clear
    assert_nil tracker.settle('b1', 'a', :completed)
  end
end
