# frozen_string_literal: true

require 'tasker/convert'
require 'tasker/v1/template_pb'

module Tasker
  # Builds a Tasker::V1::TaskTemplate from a plain Hash shaped like the YAML
  # templates in `config/templates/` (String or Symbol keys):
  #
  #   Tasker::TemplateBuilder.build(
  #     namespace: 'payments', name: 'refund', version: '1.0.0',
  #     identity_strategy: 'strict',
  #     context_schema: { 'type' => 'object', 'required' => ['order_id'] },
  #     steps: [
  #       { name: 'load_order', handler: 'payments.load_order' },
  #       { name: 'refund', handler: 'payments.refund', depends_on: ['load_order'],
  #         handler_config: { 'gateway' => 'stripe' },
  #         retry: { max_attempts: 5, backoff: 'exponential', base_ms: 1000 }, timeout_ms: 30_000 }
  #     ],
  #     environments: { 'development' => { steps: [{ name: 'refund', timeout_ms: 5000 }] } }
  #   )
  module TemplateBuilder
    module_function

    # @param template [Hash, Tasker::V1::TaskTemplate] a proto is returned unchanged
    # @return [Tasker::V1::TaskTemplate]
    def build(template)
      return template if template.is_a?(Tasker::V1::TaskTemplate)

      t = symbolize(template)
      Tasker::V1::TaskTemplate.new(
        namespace: t[:namespace].to_s, name: t[:name].to_s, version: t[:version].to_s,
        description: t[:description].to_s,
        context_schema: Convert.to_struct(t[:context_schema]),
        identity_strategy: Convert.enum_value(t[:identity_strategy] || :unspecified, 'IDENTITY_STRATEGY_'),
        steps: Array(t[:steps]).map { |s| step(symbolize(s)) },
        environments: (t[:environments] || {}).to_h { |env, o| [env.to_s, environment(symbolize(o))] }
      )
    end

    # @param step [Hash] symbolized step definition
    # @return [Tasker::V1::StepTemplate]
    def step(step)
      Tasker::V1::StepTemplate.new(
        name: step[:name].to_s, handler: step[:handler].to_s,
        depends_on: Array(step[:depends_on]).map(&:to_s),
        handler_config: Convert.to_struct(step[:handler_config]),
        retry: step[:retry] && retry_policy(symbolize(step[:retry])),
        timeout_ms: step[:timeout_ms].to_i
      )
    end

    # @param retry_hash [Hash] symbolized retry policy
    # @return [Tasker::V1::RetryPolicy]
    def retry_policy(retry_hash)
      policy = Tasker::V1::RetryPolicy.new(
        max_attempts: retry_hash[:max_attempts].to_i,
        backoff: Convert.enum_value(retry_hash[:backoff] || :unspecified, 'BACKOFF_')
      )
      policy.base_ms = retry_hash[:base_ms].to_i if retry_hash.key?(:base_ms)
      policy.max_ms = retry_hash[:max_ms].to_i if retry_hash.key?(:max_ms)
      policy.jitter = retry_hash[:jitter].to_f if retry_hash.key?(:jitter)
      policy
    end

    # @param override [Hash] symbolized environment override
    # @return [Tasker::V1::EnvironmentOverride]
    def environment(override)
      steps = Array(override[:steps]).map do |raw|
        s = symbolize(raw)
        o = Tasker::V1::StepOverride.new(name: s[:name].to_s, handler_config: Convert.to_struct(s[:handler_config]),
                                         retry: s[:retry] && retry_policy(symbolize(s[:retry])))
        o.timeout_ms = s[:timeout_ms].to_i if s.key?(:timeout_ms)
        o
      end
      Tasker::V1::EnvironmentOverride.new(steps: steps)
    end

    # @return [Hash] top-level keys as Symbols (nested JSON documents untouched)
    def symbolize(hash)
      hash.to_h.transform_keys(&:to_sym)
    end
  end
end
