# frozen_string_literal: true

require 'grpc'
require 'tasker/errors'
require 'tasker/convert'
require 'tasker/models'
require 'tasker/template_builder'
require 'tasker/v1/task_services_pb'
require 'tasker/v1/template_services_pb'
require 'tasker/v1/admin_services_pb'

module Tasker
  # The application-side client: create, inspect, repair and watch tasks;
  # register templates; list workers.
  #
  #   client = Tasker::Client.new(address: 'tasker:50051', token: ENV['TASKER_TOKEN'])
  #   task = client.create_task(namespace: 'payments', name: 'refund', context: { order_id: 42 })
  #   client.watch_task(task.task_id).each { |u| puts "#{u.kind} #{u.step_name} #{u.to_state}" }
  #   client.get_task(task.task_id).step('refund').result  # => {"refund_id" => "re_123"}
  #
  # Every call raises a {Tasker::Error} subclass when the server refuses it
  # (Tasker::NotFound with code "TASK_NOT_FOUND", Tasker::InvalidArgument with
  # #violations, ...). Task methods need a token with the `client` role,
  # {#list_workers} one with the `admin` role.
  class Client
    # List of tasks, one page at a time.
    TaskPage = Struct.new(:tasks, :next_page_token, keyword_init: true)
    # A cancelled task and the steps the call cancelled (empty if it was already cancelled).
    CancelledTask = Struct.new(:task, :cancelled_step_ids, keyword_init: true)

    # @param address [String] `host:port`
    # @param token [String, nil] bearer token
    # @param credentials [Symbol, GRPC::Core::ChannelCredentials] `:this_channel_is_insecure` or TLS credentials
    # @param timeout [Numeric] seconds allowed for each unary call
    # @param channel_args [Hash] extra gRPC channel arguments
    def initialize(address:, token: nil, credentials: :this_channel_is_insecure, timeout: 30, channel_args: {})
      @metadata = token ? { 'authorization' => "Bearer #{token}" } : {}
      @timeout = timeout
      channel = GRPC::Core::Channel.new(address, channel_args, credentials)
      @tasks = Tasker::V1::TaskService::Stub.new(address, credentials, channel_override: channel)
      @templates = Tasker::V1::TemplateService::Stub.new(address, credentials, channel_override: channel)
      @admin = Tasker::V1::AdminService::Stub.new(address, credentials, channel_override: channel)
    end

    # Creates a task from a template (empty version = the latest).
    # @return [Tasker::Task] with `created?` false when an identical task already existed
    def create_task(namespace:, name:, version: nil, context: {}, priority: 0, tags: [], initiator: nil,
                    source_system: nil, reason: nil, correlation_id: nil, idempotency_key: nil)
      request = Tasker::V1::CreateTaskRequest.new(
        template: Tasker::V1::TemplateRef.new(namespace: namespace.to_s, name: name.to_s, version: version.to_s),
        context: Convert.to_struct(context || {}), priority: priority.to_i, tags: Array(tags).map(&:to_s),
        initiator: initiator.to_s, source_system: source_system.to_s, reason: reason.to_s,
        correlation_id: correlation_id.to_s, idempotency_key: idempotency_key.to_s
      )
      response = unary(@tasks, :create_task, request)
      Task.from_proto(response.task, created: response.created)
    end

    # @param task_id [String]
    # @param omit_results [Boolean] leave step results out
    # @return [Tasker::Task] with steps, edges and execution context
    def get_task(task_id, omit_results: false)
      request = Tasker::V1::GetTaskRequest.new(task_id: task_id.to_s, omit_results: omit_results)
      Task.from_proto(unary(@tasks, :get_task, request).task)
    end

    # Lists tasks newest first, one page at a time (pass next_page_token back).
    # @param states [Array<Symbol>] e.g. `[:error, :blocked_by_failures]`
    # @return [TaskPage]
    def list_tasks(namespace: nil, name: nil, states: [], tag: nil, created_after: nil, created_before: nil,
                   page_size: 0, page_token: nil)
      request = Tasker::V1::ListTasksRequest.new(
        namespace: namespace.to_s, name: name.to_s, tag: tag.to_s, page_size: page_size.to_i,
        page_token: page_token.to_s, states: Array(states).map { |s| Convert.enum_value(s, 'TASK_STATE_') },
        created_after: Convert.to_timestamp(created_after), created_before: Convert.to_timestamp(created_before)
      )
      response = unary(@tasks, :list_tasks, request)
      TaskPage.new(tasks: response.tasks.map { |t| Task.from_proto(t) },
                   next_page_token: response.next_page_token.empty? ? nil : response.next_page_token)
    end

    # Every task matching the filters of {#list_tasks}, newest first, fetching
    # pages as the enumeration goes.
    # @return [Enumerator<Tasker::Task>]
    def each_task(**filters)
      return enum_for(:each_task, **filters) unless block_given?

      token = nil
      loop do
        page = list_tasks(**filters, page_token: token)
        page.tasks.each { |task| yield task }
        break unless (token = page.next_page_token)
      end
    end

    # Cancels the task; workers running its steps are told to stop.
    # @return [CancelledTask]
    def cancel_task(task_id, reason: nil)
      request = Tasker::V1::CancelTaskRequest.new(task_id: task_id.to_s, reason: reason.to_s)
      response = unary(@tasks, :cancel_task, request)
      CancelledTask.new(task: Task.from_proto(response.task), cancelled_step_ids: response.cancelled_step_ids.to_a)
    end

    # Retries every step of the task that is in `error`, each with a fresh
    # allowance of attempts (see {#retry_step}).
    # @return [Tasker::Task]
    def retry_task(task_id, reason: nil)
      request = Tasker::V1::RetryTaskRequest.new(task_id: task_id.to_s, reason: reason.to_s)
      Task.from_proto(unary(@tasks, :retry_task, request).task)
    end

    # Runs a step in `error` again, with a fresh allowance of attempts. Attempt
    # numbers are not reset: the returned step's `attempt_base` equals its
    # `attempts`, and its `attempts_in_allowance` starts again at 0.
    # @return [Tasker::TaskStep]
    def retry_step(step_id, reason: nil)
      request = Tasker::V1::RetryStepRequest.new(step_id: step_id.to_s, reason: reason.to_s)
      TaskStep.from_proto(unary(@tasks, :retry_step, request).step)
    end

    # Marks a step resolved_manually (no result) so its children may run.
    # @return [Tasker::TaskStep]
    def resolve_step(step_id, reason: nil)
      request = Tasker::V1::ResolveStepRequest.new(step_id: step_id.to_s, reason: reason.to_s)
      TaskStep.from_proto(unary(@tasks, :resolve_step, request).step)
    end

    # Completes a step with a result supplied by the operator.
    # @param result [Object] any JSON value
    # @return [Tasker::TaskStep]
    def complete_step(step_id, result:, reason: nil)
      request = Tasker::V1::CompleteStepRequest.new(step_id: step_id.to_s, result: Convert.to_value(result),
                                                    reason: reason.to_s)
      TaskStep.from_proto(unary(@tasks, :complete_step, request).step)
    end

    # Registers a template version.
    # @param template [Hash, Tasker::V1::TaskTemplate] see {Tasker::TemplateBuilder}
    # @return [Tasker::TemplateRegistration] `created?` false when the identical body was already stored
    # @raise [Tasker::InvalidArgument] with #violations when the template is invalid
    # @raise [Tasker::AlreadyExists] when the version exists with a different body
    def register_template(template)
      request = Tasker::V1::RegisterTemplateRequest.new(template: TemplateBuilder.build(template))
      TemplateRegistration.from_proto(unary(@templates, :register_template, request))
    end

    # Lists worker sessions (admin role).
    # @return [Array<Tasker::WorkerSession>]
    def list_workers(namespace: nil, handler: nil, include_expired: false)
      request = Tasker::V1::ListWorkersRequest.new(namespace: namespace.to_s, handler: handler.to_s,
                                                   include_expired: include_expired)
      unary(@admin, :list_workers, request).sessions.map { |s| WorkerSession.from_proto(s) }
    end

    # Streams every state change, progress report and result of one task; the
    # enumeration ends after the task reaches a terminal state.
    # @return [Enumerator<Tasker::TaskUpdate>] the call starts when enumerated
    def watch_task(task_id, skip_history: false)
      request = Tasker::V1::WatchTaskRequest.new(task_id: task_id.to_s, skip_history: skip_history)
      stream(@tasks, :watch_task, request) { |u| TaskUpdate.from_proto(u) }
    end

    # Streams lifecycle events, live; with `after_cursor` it first replays
    # every matching event after that cursor. Runs until the caller stops
    # enumerating (break) or the server ends it.
    # @return [Enumerator<Tasker::Event>]
    # @raise [Tasker::OutOfRange] (while enumerating) when the cursor's events are gone
    def subscribe_events(namespace: nil, task_name: nil, task_id: nil, event_types: [], after_cursor: nil)
      request = Tasker::V1::SubscribeEventsRequest.new(namespace: namespace.to_s, task_name: task_name.to_s,
                                                       task_id: task_id.to_s,
                                                       event_types: Array(event_types).map(&:to_s))
      request.after_cursor = after_cursor.to_i unless after_cursor.nil?
      stream(@tasks, :subscribe_events, request) { |e| Event.from_proto(e) }
    end

    private

    def unary(stub, rpc, request)
      Error.translate do
        stub.public_send(rpc, request, metadata: @metadata, deadline: Time.now + @timeout)
      end
    end

    def stream(stub, rpc, request, &convert)
      metadata = @metadata
      Enumerator.new do |out|
        op = stub.public_send(rpc, request, metadata: metadata, return_op: true)
        begin
          Error.translate { op.execute.each { |message| out << convert.call(message) } }
        ensure
          # The consumer stopped early (break): end the call instead of leaking it.
          op.cancel if op.status.nil?
        end
      end
    end
  end
end
