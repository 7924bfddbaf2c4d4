# frozen_string_literal: true

require_relative 'test_helper'

class StepContextTest < Minitest::Test
  def setup
    @sent = []
    @step = Tasker::Step.from_assignment(assignment('s1', context: { 'n' => 1 }, ancestors: { 'a' => { 'value' => 2 } }))
    @ctx = Tasker::StepContext.new(step: @step, logger: quiet_logger, progress_sink: ->(p) { @sent << p })
  end

  def test_step_exposes_parsed_assignment
    assert_equal({ 'n' => 1 }, @step.context)
    assert_equal({ 'value' => 2 }, @step.result_of(:a))
    assert_equal 'test', @step.namespace
    refute @step.last_attempt?
    assert_nil @step.correlation_id
  end

  def test_progress_is_forwarded_until_cancelled
    @ctx.progress(done: 1)
    @ctx.progress({ 'done' => 2 })
    assert_equal [{ done: 1 }, { 'done' => 2 }], @sent
    @ctx.cancel!('task cancelled')
    refute @ctx.progress(done: 3)
    assert_equal 2, @sent.size
  end

  def test_cancellation_is_visible_every_way
    refute @ctx.cancelled?
    assert_nil @ctx.check_cancelled!
    called = Queue.new
    @ctx.on_cancel { |reason| called << reason }
    waiter = Thread.new { @ctx.wait_for_cancellation(10) }

    assert @ctx.cancel!('task cancelled')
    refute @ctx.cancel!('again'), 'only the first cancel counts'
    assert waiter.value
    assert_equal 'task cancelled', called.pop
    assert @ctx.cancelled?
    assert_equal 'task cancelled', @ctx.cancel_reason
    assert_raises(Tasker::Cancelled) { @ctx.check_cancelled! }

    late = Queue.new
    @ctx.on_cancel { |reason| late << reason }
    assert_equal 'task cancelled', late.pop, 'a late on_cancel runs at once'
  end

  def test_wait_for_cancellation_times_out
    refute @ctx.wait_for_cancellation(0.01)
  end
end
