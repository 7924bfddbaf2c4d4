# frozen_string_literal: true

require_relative 'test_helper'

class RunLedgerTest < Minitest::Test
  def setup
    @ledger = Tasker::Worker::RunLedger.new(logger: quiet_logger)
  end

  def start(step_id, batch_id: 'b1')
    run, = @ledger.add_batch(Tasker::V1::StepBatch.new(batch_id: batch_id, steps: [assignment(step_id)]))
    ctx = Tasker::StepContext.new(step: Tasker::Step.from_assignment(run.assignment), logger: quiet_logger,
                                  progress_sink: ->(_) {})
    assert @ledger.begin_run(run, ctx)
    [run, ctx]
  end

  def ack(report, status = :ACK_STATUS_ACCEPTED, reason = :REJECT_REASON_UNSPECIFIED)
    @ledger.apply_acks([Tasker::V1::ResultAck.new(report_id: report.report_id, step_id: report.step_id,
                                                  attempt: report.attempt, status: status, reason: reason)])
  end

  def test_a_run_is_forgotten_once_its_handler_returned_and_its_final_report_was_acked
    run, = start('s1')
    final = @ledger.report_final(run, { completed: Tasker::V1::StepCompleted.new })
    assert_nil @ledger.report(run, { started: Tasker::V1::StepStarted.new }), 'nothing after the final report'
    @ledger.finish_run(run)
    refute @ledger.idle?
    ack(final)
    @ledger.buffer.take # the BatchCompleted leaves with the next message
    assert @ledger.idle?
  end

  def test_progress_seq_increases_per_run
    run, = start('s1')
    seqs = 3.times.map { @ledger.report_progress(run, { 'i' => 1 }).progress.seq }
    assert_equal [1, 2, 3], seqs
  end

  def test_a_rejection_saying_the_step_is_gone_drops_the_run_and_cancels_its_handler
    run, ctx = start('s1')
    started = @ledger.report(run, { started: Tasker::V1::StepStarted.new })
    ack(started, :ACK_STATUS_REJECTED, :REJECT_REASON_TASK_CANCELLED)
    assert ctx.cancelled?
    assert_equal 1, @ledger.zombie_count, 'its handler still holds a thread'
    assert_nil @ledger.report_final(run, { completed: Tasker::V1::StepCompleted.new })
    @ledger.finish_run(run)
    assert_equal 0, @ledger.zombie_count
    @ledger.buffer.take
    assert @ledger.idle?
  end

  def test_a_rejected_result_is_replaced_by_a_permanent_failure
    run, = start('s1')
    final = @ledger.report_final(run, { completed: Tasker::V1::StepCompleted.new(result_json: '"x"') })
    @ledger.finish_run(run)
    @ledger.buffer.take
    ack(final, :ACK_STATUS_REJECTED, :REJECT_REASON_PAYLOAD_TOO_LARGE)
    replacement = @ledger.buffer.take.flat_map { |m| m.reports.to_a }.last
    assert_equal [:failed, 'PAYLOAD_TOO_LARGE', false],
                 [replacement.kind, replacement.failed.error.code, replacement.failed.error.retryable]
    refute @ledger.idle?
    ack(replacement)
    assert @ledger.idle?
  end

  def test_cancel_settles_the_batch_without_counting_the_step
    run_a, = start('a')
    run_b, ctx_b = start('b', batch_id: 'b2')
    @ledger.report_final(run_a, { completed: Tasker::V1::StepCompleted.new })
    @ledger.cancel([Tasker::V1::StepRef.new(step_id: 'b', attempt: 1)], 'task cancelled')
    assert ctx_b.cancelled?
    batches = @ledger.buffer.take.flat_map { |m| m.batches.to_a }
    assert_equal [['b1', 1, 0], ['b2', 0, 0]], batches.map { |b| [b.batch_id, b.completed, b.failed] }
    refute_nil run_b.dropped
  end

  def test_reconcile_drops_unlisted_runs_and_fails_unknown_listed_steps_once
    run, ctx = start('mine')
    kept, = start('kept')
    refs = [Tasker::V1::StepRef.new(step_id: 'kept', attempt: 1), Tasker::V1::StepRef.new(step_id: 'ghost', attempt: 1)]
    @ledger.reconcile(refs)
    assert ctx.cancelled?
    assert_nil kept.dropped
    @ledger.reconcile(refs)
    lost = @ledger.buffer.take.flat_map { |m| m.reports.to_a }.select { |r| r.step_id == 'ghost' }
    assert_equal 1, lost.size, 'an unacknowledged lost-assignment report is not repeated'
    assert_equal 'ASSIGNMENT_LOST', lost.first.failed.error.code
    refute_nil run.dropped
  end

  def test_discard_forgets_everything
    run, ctx = start('s1')
    @ledger.report(run, { started: Tasker::V1::StepStarted.new })
    assert_equal 1, @ledger.discard
    assert ctx.cancelled?
    @ledger.finish_run(run)
    assert @ledger.idle?
  end
end
