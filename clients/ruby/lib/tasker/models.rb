# frozen_string_literal: true

require 'tasker/convert'

module Tasker
  # Plain Ruby views of the application API's messages, returned by
  # {Tasker::Client}. JSON (contexts, results, payloads) is plain Hashes and
  # Arrays with String keys; states are lowercase Symbols (`:in_progress`);
  # instants are Time (nil when unset).

  # Why a step attempt failed.
  StepFailure = Struct.new(:error_class, :message, :backtrace, :retryable, :retry_after_ms, :code, :details,
                           keyword_init: true) do
    # @param error [Tasker::V1::StepError, nil]
    # @return [StepFailure, nil]
    def self.from_proto(error)
      return nil if error.nil?

      new(error_class: error.error_class, message: error.message, backtrace: error.backtrace.to_a,
          retryable: error.retryable, retry_after_ms: error.has_retry_after_ms? ? error.retry_after_ms : nil,
          code: error.code.empty? ? nil : error.code,
          details: Convert.from_json_bytes(error.details_json))
    end
  end

  # One step of a task.
  #
  # `attempts` numbers the current or last attempt and is never reset: an
  # operator retry (Client#retry_step, #retry_task) gives the step a fresh
  # allowance of `max_attempts` attempts and sets `attempt_base` to `attempts`,
  # so `attempts` may exceed `max_attempts`. {#attempts_in_allowance} is what
  # the retry policy counts against `max_attempts`.
  TaskStep = Struct.new(:step_id, :name, :handler, :state, :attempts, :max_attempts, :result, :last_error,
                        :created_at, :updated_at, :started_at, :completed_at, :next_attempt_at, :depends_on,
                        :attempt_base, keyword_init: true) do
    # @param step [Tasker::V1::Step]
    # @return [TaskStep]
    def self.from_proto(step)
      new(step_id: step.step_id, name: step.name, handler: step.handler,
          state: Convert.enum_name(step.state, 'STEP_STATE_'), attempts: step.attempts,
          max_attempts: step.max_attempts, attempt_base: step.attempt_base,
          result: Convert.from_value(step.result), last_error: StepFailure.from_proto(step.last_error),
          created_at: Convert.to_time(step.created_at), updated_at: Convert.to_time(step.updated_at),
          started_at: Convert.to_time(step.started_at), completed_at: Convert.to_time(step.completed_at),
          next_attempt_at: Convert.to_time(step.next_attempt_at), depends_on: step.depends_on.to_a)
    end

    # @return [Integer] attempts used in the current retry allowance
    #   (`attempts - attempt_base`); the step is retried while this is below
    #   `max_attempts`
    def attempts_in_allowance
      attempts.to_i - attempt_base.to_i
    end
  end

  # One run of a template.
  Task = Struct.new(:task_id, :namespace, :name, :version, :state, :context, :priority, :tags, :initiator,
                    :source_system, :reason, :correlation_id, :created_at, :updated_at, :completed_at,
                    :steps, :edges, :execution_context, :created, keyword_init: true) do
    # @param task [Tasker::V1::Task]
    # @param created [Boolean, nil] CreateTaskResponse.created
    # @return [Task]
    def self.from_proto(task, created: nil)
      ref = task.template
      new(task_id: task.task_id, namespace: ref&.namespace, name: ref&.name, version: ref&.version,
          state: Convert.enum_name(task.state, 'TASK_STATE_'), context: Convert.from_struct(task.context),
          priority: task.priority, tags: task.tags.to_a, initiator: task.initiator,
          source_system: task.source_system, reason: task.reason,
          correlation_id: task.correlation_id.empty? ? nil : task.correlation_id,
          created_at: Convert.to_time(task.created_at), updated_at: Convert.to_time(task.updated_at),
          completed_at: Convert.to_time(task.completed_at),
          steps: task.steps.map { |s| TaskStep.from_proto(s) },
          edges: task.edges.map { |e| { from: e.from_step, to: e.to_step } },
          execution_context: task.execution_context && task.execution_context.to_h, created: created)
    end

    # @return [Boolean] whether the task reached a terminal state
    def terminal?
      Task::TERMINAL_STATES.include?(state)
    end

    # @return [Boolean, nil] from create_task: false when an identical task already existed
    def created?
      created
    end

    # @param name [String, Symbol]
    # @return [TaskStep, nil] the step with that name
    def step(name)
      steps.find { |s| s.name == name.to_s }
    end
  end
  # Task states after which nothing more happens unless an operator acts.
  Task::TERMINAL_STATES = %i[complete error cancelled resolved_manually].freeze

  # One thing that happened to a watched task. `kind` is :task_state_changed,
  # :step_state_changed, :step_progress or :step_result; fields not relevant
  # to the kind are nil.
  TaskUpdate = Struct.new(:cursor, :at, :kind, :step_id, :step_name, :from_state, :to_state, :attempt, :reason,
                          :seq, :payload, :result, keyword_init: true) do
    # @param update [Tasker::V1::TaskUpdate]
    # @return [TaskUpdate]
    def self.from_proto(update)
      base = { cursor: update.cursor, at: Convert.to_time(update.at), kind: update.update }
      value = update.public_send(update.update) if update.update
      new(**base, **fields_of(update.update, value))
    end

    def self.fields_of(kind, value)
      case kind
      when :task_state_changed
        { from_state: Convert.enum_name(value.from_state, 'TASK_STATE_'),
          to_state: Convert.enum_name(value.to_state, 'TASK_STATE_'), reason: value.reason }
      when :step_state_changed
        { step_id: value.step_id, step_name: value.step_name, attempt: value.attempt, reason: value.reason,
          from_state: Convert.enum_name(value.from_state, 'STEP_STATE_'),
          to_state: Convert.enum_name(value.to_state, 'STEP_STATE_') }
      when :step_progress
        { step_id: value.step_id, step_name: value.step_name, attempt: value.attempt, seq: value.seq,
          payload: Convert.from_value(value.payload) }
      when :step_result
        { step_id: value.step_id, step_name: value.step_name, attempt: value.attempt,
          result: Convert.from_value(value.result) }
      else {}
      end
    end
    private_class_method :fields_of
  end

  # One lifecycle event (`task.completed`, `step.failed`, ...).
  Event = Struct.new(:cursor, :event_type, :namespace, :task_name, :task_id, :step_id, :step_name, :payload, :at,
                     keyword_init: true) do
    # @param event [Tasker::V1::Event]
    # @return [Event]
    def self.from_proto(event)
      new(cursor: event.cursor, event_type: event.event_type, namespace: event.namespace,
          task_name: event.task_name, task_id: event.task_id,
          step_id: event.step_id.empty? ? nil : event.step_id,
          step_name: event.step_name.empty? ? nil : event.step_name,
          payload: Convert.from_struct(event.payload), at: Convert.to_time(event.at))
    end
  end

  # One worker session as the server sees it (AdminService.ListWorkers).
  WorkerSession = Struct.new(:session_id, :worker_name, :language, :sdk_version, :handlers, :namespaces, :labels,
                             :max_in_flight, :in_flight, :state, :server_instance, :connected,
                             :last_heartbeat_at, :expires_at, :created_at, keyword_init: true) do
    # @param session [Tasker::V1::WorkerSession]
    # @return [WorkerSession]
    def self.from_proto(session)
      new(session_id: session.session_id, worker_name: session.worker_name, language: session.language,
          sdk_version: session.sdk_version, handlers: session.handlers.to_a, namespaces: session.namespaces.to_a,
          labels: session.labels.to_h, max_in_flight: session.max_in_flight, in_flight: session.in_flight,
          state: Convert.enum_name(session.state, 'SESSION_STATE_'), server_instance: session.server_instance,
          connected: session.connected, last_heartbeat_at: Convert.to_time(session.last_heartbeat_at),
          expires_at: Convert.to_time(session.expires_at), created_at: Convert.to_time(session.created_at))
    end
  end

  # The outcome of registering a template.
  TemplateRegistration = Struct.new(:namespace, :name, :version, :body_hash, :created_at, :created,
                                    keyword_init: true) do
    # @param response [Tasker::V1::RegisterTemplateResponse]
    # @return [TemplateRegistration]
    def self.from_proto(response)
      t = response.template
      new(namespace: t.namespace, name: t.name, version: t.version, body_hash: t.body_hash,
          created_at: Convert.to_time(t.created_at), created: response.created)
    end

    # @return [Boolean] false when the identical version was already stored
    def created?
      created
    end
  end
end
