# frozen_string_literal: true

require 'tasker/convert'

module Tasker
  # One attempt of one step, as handed to a handler: everything in the
  # StepAssignment, with the JSON fields parsed into plain Ruby values
  # (Hashes with String keys, as JSON.parse gives them).
  #
  #   def process(step, ctx)
  #     amount = step.context['amount']
  #     order  = step.ancestor_results['load_order']
  #     ...
  #   end
  class Step
    # @return [String] the step's identifier
    attr_reader :step_id
    # @return [Integer] 1-based attempt number this run carries
    attr_reader :attempt
    # @return [Integer] number of the last attempt the step's current retry
    #   allowance permits (`attempt == max_attempts` is the last): the retry
    #   policy's max_attempts until an operator retries the step, then the
    #   attempts already made plus that allowance
    attr_reader :max_attempts
    # @return [String] the task the step belongs to
    attr_reader :task_id
    # @return [String] the template's namespace
    attr_reader :namespace
    # @return [String] the template's name
    attr_reader :task_name
    # @return [String] the template's concrete version
    attr_reader :task_version
    # @return [String] the step's name in the template
    attr_reader :step_name
    # @return [String] the handler name that selected this worker
    attr_reader :handler
    # @return [Hash] the step's handler_config (after environment overrides)
    attr_reader :handler_config
    # @return [Hash] the task context
    attr_reader :context
    # @return [Hash] results of every ancestor step that has one, by step name
    attr_reader :ancestor_results
    # @return [Time, nil] when the server gives up on this attempt
    attr_reader :deadline
    # @return [Integer] the per-attempt timeout that produced the deadline
    attr_reader :timeout_ms
    # @return [String, nil] the task's correlation id
    attr_reader :correlation_id

    # @param assignment [Tasker::V1::StepAssignment]
    # @return [Tasker::Step]
    # @raise [JSON::ParserError] when a JSON field is malformed
    def self.from_assignment(assignment)
      template = assignment.template
      new(
        step_id: assignment.step_id, attempt: assignment.attempt, max_attempts: assignment.max_attempts,
        task_id: assignment.task_id, namespace: template&.namespace.to_s, task_name: template&.name.to_s,
        task_version: template&.version.to_s, step_name: assignment.step_name, handler: assignment.handler,
        handler_config: Convert.from_json_bytes(assignment.handler_config_json, empty: {}),
        context: Convert.from_json_bytes(assignment.context_json, empty: {}),
        ancestor_results: Convert.from_json_bytes(assignment.ancestor_results_json, empty: {}),
        deadline: Convert.to_time(assignment.deadline), timeout_ms: assignment.timeout_ms,
        correlation_id: assignment.correlation_id.empty? ? nil : assignment.correlation_id
      )
    end

    # @param attributes [Hash] one keyword per reader above
    def initialize(**attributes)
      attributes.each { |name, value| instance_variable_set(:"@#{name}", value) }
      freeze
    end

    # @return [Boolean] true when a retryable failure will not be retried
    def last_attempt?
      max_attempts.positive? && attempt >= max_attempts
    end

    # @param step_name [String, Symbol]
    # @return [Object, nil] the named ancestor's result
    def result_of(step_name)
      ancestor_results[step_name.to_s]
    end

    # @return [Hash] every attribute, by Symbol name
    def to_h
      %i[step_id attempt max_attempts task_id namespace task_name task_version step_name handler
         handler_config context ancestor_results deadline timeout_ms correlation_id]
        .to_h { |name| [name, public_send(name)] }
    end

    # Shown in logs; leaves out the context, which may hold personal data.
    def inspect
      "#<Tasker::Step #{step_name} step_id=#{step_id} attempt=#{attempt}/#{max_attempts} task_id=#{task_id}>"
    end
  end
end
