# frozen_string_literal: true

require_relative 'test_helper'

class ReportBufferTest < Minitest::Test
  def setup
    @buffer = Tasker::Worker::ReportBuffer.new
  end

  def ack(report, status = :ACK_STATUS_ACCEPTED)
    @buffer.ack(Tasker::V1::ResultAck.new(report_id: report.report_id, step_id: report.step_id,
                                          attempt: report.attempt, status: status))
  end

  def ids(messages)
    messages.flat_map { |m| m.reports.map(&:report_id) }
  end

  def test_assigns_increasing_ids_and_coalesces_waiting_reports_into_one_batch
    a = @buffer.add(step_report('s1'))
    b = @buffer.add(step_report('s1', :progress))
    c = @buffer.add(step_report('s2'))
    assert_equal [1, 2, 3], [a, b, c].map(&:report_id)

    messages = @buffer.take
    assert_equal 1, messages.size
    assert_equal [1, 2, 3], ids(messages)
    assert_empty @buffer.take, 'taken reports are not sent twice on the same stream'
  end

  def test_keeps_reports_until_acked_and_requeues_the_unacked_in_id_order
    reports = 4.times.map { |i| @buffer.add(step_report("s#{i}")) }
    @buffer.take
    ack(reports[1])
    ack(reports[3], :ACK_STATUS_DUPLICATE)
    assert_equal 2, @buffer.pending_count

    @buffer.requeue
    assert_equal [1, 3], ids(@buffer.take), 'resent with their original ids, in order'
  end

  def test_rejected_reports_are_never_resent
    report = @buffer.add(step_report('s1', :completed))
    @buffer.take
    assert_equal report, ack(report, :ACK_STATUS_REJECTED)
    @buffer.requeue
    assert_empty @buffer.take
    assert @buffer.empty?
  end

  def test_ack_of_unknown_report_returns_nil
    assert_nil @buffer.ack(Tasker::V1::ResultAck.new(report_id: 99))
  end

  def test_report_acked_before_it_was_written_is_skipped
    first = @buffer.add(step_report('s1'))
    @buffer.add(step_report('s2'))
    ack(first)
    assert_equal [2], ids(@buffer.take)
  end

  def test_splits_batches_below_the_size_limit
    @buffer.max_bytes = 4096
    big = 'x' * 1000
    6.times do |i|
      @buffer.add(Tasker::V1::StepReport.new(step_id: "s#{i}", attempt: 1,
                                             completed: Tasker::V1::StepCompleted.new(result_json: "\"#{big}\"")))
    end
    messages = @buffer.take
    assert_operator messages.size, :>, 1
    assert_equal (1..6).to_a, ids(messages)
    messages.each do |m|
      size = Tasker::V1::WorkerMessage.encode(Tasker::V1::WorkerMessage.new(reports: m)).bytesize
      assert_operator size, :<=, 4096
    end
  end

  def test_oversized_result_is_replaced_by_a_payload_too_large_failure
    @buffer.max_bytes = 2048
    report = @buffer.add(Tasker::V1::StepReport.new(
                           step_id: 's1', attempt: 2,
                           completed: Tasker::V1::StepCompleted.new(result_json: "\"#{'y' * 5000}\"")
                         ))
    assert_equal :failed, report.kind
    assert_equal 's1', report.step_id
    assert_equal 2, report.attempt
    assert_equal 'PAYLOAD_TOO_LARGE', report.failed.error.code
    refute report.failed.error.retryable
  end

  def test_oversized_progress_raises_and_consumes_no_id
    @buffer.max_bytes = 2048
    assert_raises(Tasker::PayloadTooLarge) do
      @buffer.add(Tasker::V1::StepReport.new(step_id: 's1', attempt: 1,
                                             progress: Tasker::V1::StepProgress.new(seq: 1, payload_json: 'z' * 5000)))
    end
    assert_equal 1, @buffer.add(step_report('s1')).report_id
  end

  def test_duplicate_switch_sends_the_next_report_twice_with_the_same_id
    @buffer.add(step_report('other'))
    @buffer.duplicate_next!(step_id: 's1')
    @buffer.add(step_report('other', :completed))
    dup = @buffer.add(step_report('s1', :completed))
    @buffer.add(step_report('s2'))

    messages = @buffer.take
    assert_equal [1, 2, 3, 3, 4], ids(messages)
    assert_equal [dup.report_id], messages[1].reports.map(&:report_id), 'the copy travels alone'

    @buffer.requeue
    assert_equal [1, 2, 3, 4], ids(@buffer.take), 'the switch applies once'
  end

  def test_batch_completions_ride_with_reports_and_are_not_resent
    @buffer.add(step_report('s1', :completed))
    @buffer.add_batch_completed(Tasker::V1::BatchCompleted.new(batch_id: 'b1', completed: 1))
    messages = @buffer.take
    assert_equal 1, messages.size
    assert_equal ['b1'], messages.first.batches.map(&:batch_id)

    @buffer.requeue
    assert_empty @buffer.take.flat_map { |m| m.batches.to_a }
  end

  def test_pending_keys_name_unacknowledged_attempts
    a = @buffer.add(step_report('s1', attempt: 2))
    @buffer.add(step_report('s2'))
    ack(a)
    assert_equal Set[['s2', 1]], @buffer.pending_keys
  end

  def test_discard_drops_everything
    @buffer.add(step_report('s1'))
    @buffer.add_batch_completed(Tasker::V1::BatchCompleted.new(batch_id: 'b1'))
    assert_equal 1, @buffer.discard
    assert @buffer.empty?
    refute @buffer.unsent?
  end
end
