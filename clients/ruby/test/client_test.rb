# frozen_string_literal: true

require_relative 'test_helper'

# Tasker::Client against a scripted TaskService peer on a real socket:
# request shapes, Struct/Value conversion, error mapping from status and
# trailing metadata, and streaming.
class ClientTest < Minitest::Test
  C = Tasker::Convert

  # Answers from fixed data and remembers what it was asked.
  class TaskPeer < Tasker::V1::TaskService::Service
    attr_reader :requests, :watch_cancelled

    def initialize
      super
      @requests = Queue.new
      @watch_cancelled = Queue.new
    end

    def create_task(request, call)
      @requests << [request, call.metadata['authorization']]
      task = Tasker::V1::Task.new(task_id: 't-1', template: request.template, context: request.context,
                                  state: :TASK_STATE_PENDING, tags: request.tags.to_a)
      Tasker::V1::CreateTaskResponse.new(task: task, created: true)
    end

    def list_tasks(request, _call)
      @requests << [request, nil]
      page = request.page_token.empty? ? 0 : request.page_token.to_i
      tasks = [Tasker::V1::Task.new(task_id: "t-#{page}", state: :TASK_STATE_ERROR)]
      Tasker::V1::ListTasksResponse.new(tasks: tasks, next_page_token: page < 2 ? (page + 1).to_s : '')
    end

    def subscribe_events(request, _call)
      @requests << [request, nil]
      [Tasker::V1::Event.new(cursor: 8, event_type: 'step.failed', namespace: 'payments', task_id: 't-1',
                             step_id: 'st-1', step_name: 'charge',
                             payload: C.to_struct({ 'attempt' => 2, 'error' => { 'code' => 'X' } }))]
    end

    def cancel_task(request, _call)
      Tasker::V1::CancelTaskResponse.new(task: Tasker::V1::Task.new(task_id: request.task_id, state: :TASK_STATE_CANCELLED),
                                         cancelled_step_ids: %w[st-1 st-2])
    end

    def retry_step(request, _call)
      @requests << [request, nil]
      Tasker::V1::RetryStepResponse.new(step: Tasker::V1::Step.new(
        step_id: request.step_id, name: 'charge', state: :STEP_STATE_PENDING, attempts: 3, max_attempts: 3,
        attempt_base: 3
      ))
    end

    def get_task(request, _call)
      if request.task_id == 'missing'
        raise GRPC::NotFound.new('task missing not found',
                                 'tasker-error-code' => 'TASK_NOT_FOUND',
                                 'tasker-error-details-bin' => '{"kind":"task","id":"missing"}')
      end
      Tasker::V1::GetTaskResponse.new(task: complete_task(request.task_id))
    end

    def complete_task(task_id)
      step = Tasker::V1::Step.new(
        step_id: 'st-1', name: 'charge', state: :STEP_STATE_COMPLETE, attempts: 2, max_attempts: 3,
        result: C.to_value({ 'amount' => 42, 'ok' => true }),
        last_error: Tasker::V1::StepError.new(error_class: 'Timeout', message: 'slow', retryable: true,
                                              retry_after_ms: 0),
        completed_at: C.to_timestamp(Time.at(1_700_000_000))
      )
      Tasker::V1::Task.new(task_id: task_id, state: :TASK_STATE_COMPLETE, steps: [step],
                           edges: [Tasker::V1::Edge.new(from_step: 'load', to_step: 'charge')])
    end

    def watch_task(request, _call)
      Enumerator.new do |out|
        out << Tasker::V1::TaskUpdate.new(cursor: 1, task_state_changed: Tasker::V1::TaskStateChanged.new(
          from_state: :TASK_STATE_PENDING, to_state: :TASK_STATE_IN_PROGRESS
        ))
        out << Tasker::V1::TaskUpdate.new(cursor: 2, step_progress: Tasker::V1::StepProgressUpdate.new(
          step_id: 'st-1', step_name: 'charge', attempt: 1, seq: 1, payload: C.to_value({ 'i' => 1 })
        ))
        next if request.task_id == 'short'

        # A live watch: keep sending until a write fails because the client went away.
        loop do
          sleep 0.01
          out << Tasker::V1::TaskUpdate.new(cursor: 3)
        end
      ensure
        # Reached when a write fails (the client cancelled), whichever write it was.
        @watch_cancelled << true if request.task_id == 'live'
      end
    end
  end

  def setup
    @peer = TaskPeer.new
    @server = GRPC::RpcServer.new(pool_size: 4)
    port = @server.add_http2_port('127.0.0.1:0', :this_port_is_insecure)
    @server.handle(@peer)
    @thread = Thread.new { @server.run }
    @server.wait_till_running(10)
    @client = Tasker::Client.new(address: "127.0.0.1:#{port}", token: 'tok')
  end

  def teardown
    @server.stop
    @thread.join(10)
  end

  def test_create_task_sends_struct_context_and_bearer_token
    task = @client.create_task(namespace: 'payments', name: 'refund', context: { order_id: 7, items: [1, 2] },
                               tags: [:urgent])
    request, auth = @peer.requests.pop
    assert_equal 'Bearer tok', auth
    assert_equal({ 'order_id' => 7, 'items' => [1, 2] }, C.from_struct(request.context))
    assert task.created?
    assert_equal ['t-1', 'payments', 'refund', :pending], [task.task_id, task.namespace, task.name, task.state]
    assert_equal({ 'order_id' => 7, 'items' => [1, 2] }, task.context)
    assert_equal ['urgent'], task.tags
  end

  def test_get_task_returns_plain_ruby_values
    task = @client.get_task('t-9')
    assert task.terminal?
    step = task.step(:charge)
    assert_equal [:complete, 2], [step.state, step.attempts]
    assert_equal({ 'amount' => 42, 'ok' => true }, step.result)
    assert_equal ['Timeout', 0], [step.last_error.error_class, step.last_error.retry_after_ms]
    assert_equal Time.at(1_700_000_000), step.completed_at
    assert_equal [{ from: 'load', to: 'charge' }], task.edges
  end

  def test_each_task_follows_page_tokens_with_the_same_filters
    ids = @client.each_task(states: %i[error blocked_by_failures], page_size: 1).map(&:task_id)
    assert_equal %w[t-0 t-1 t-2], ids
    first, = @peer.requests.pop
    assert_equal %i[TASK_STATE_ERROR TASK_STATE_BLOCKED_BY_FAILURES], first.states.to_a
  end

  def test_cancel_task_returns_the_task_and_the_cancelled_steps
    result = @client.cancel_task('t-5', reason: 'no longer needed')
    assert_equal [:cancelled, %w[st-1 st-2]], [result.task.state, result.cancelled_step_ids]
  end

  def test_retry_step_returns_the_step_with_a_fresh_allowance
    step = @client.retry_step('st-3', reason: 'fixed upstream')
    request, = @peer.requests.pop
    assert_equal ['st-3', 'fixed upstream'], [request.step_id, request.reason]
    assert_equal [:pending, 3, 3, 0], [step.state, step.attempts, step.attempt_base, step.attempts_in_allowance]
  end

  def test_server_errors_become_tasker_errors_with_reason_and_details
    error = assert_raises(Tasker::NotFound) { @client.get_task('missing') }
    assert_equal 'TASK_NOT_FOUND', error.code
    assert_equal({ 'kind' => 'task', 'id' => 'missing' }, error.details)
    assert_equal GRPC::Core::StatusCodes::NOT_FOUND, error.grpc_code
  end

  def test_unimplemented_calls_raise_tasker_errors_too
    error = assert_raises(Tasker::Error) { @client.list_workers }
    assert_equal GRPC::Core::StatusCodes::UNIMPLEMENTED, error.grpc_code
  end

  def test_watch_task_yields_updates_and_ends_with_the_stream
    updates = @client.watch_task('short').to_a
    assert_equal %i[task_state_changed step_progress], updates.map(&:kind)
    assert_equal %i[pending in_progress], [updates[0].from_state, updates[0].to_state]
    assert_equal [1, { 'i' => 1 }, 'charge'], [updates[1].seq, updates[1].payload, updates[1].step_name]
  end

  def test_subscribe_events_passes_filters_and_yields_plain_events
    events = @client.subscribe_events(namespace: 'payments', event_types: ['step.failed'], after_cursor: 0).to_a
    request, = @peer.requests.pop
    assert request.has_after_cursor?, 'a cursor of 0 means from the oldest event, unlike no cursor'
    assert_equal ['payments', ['step.failed']], [request.namespace, request.event_types.to_a]
    event = events.first
    assert_equal [8, 'step.failed', 'charge'], [event.cursor, event.event_type, event.step_name]
    assert_equal({ 'attempt' => 2, 'error' => { 'code' => 'X' } }, event.payload)

    @client.subscribe_events.to_a
    request, = @peer.requests.pop
    refute request.has_after_cursor?
  end

  def test_breaking_out_of_a_watch_cancels_the_call
    first = nil
    @client.watch_task('live').each do |update|
      first = update
      break
    end
    assert_equal 1, first.cursor
    assert @peer.watch_cancelled.pop, 'the server saw the call end'
  end
end
