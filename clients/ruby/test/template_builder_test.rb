# frozen_string_literal: true

require_relative 'test_helper'

class TemplateBuilderTest < Minitest::Test
  def test_builds_a_template_from_a_yaml_shaped_hash
    t = Tasker::TemplateBuilder.build(
      'namespace' => 'payments', 'name' => 'refund', 'version' => '1.0.0', 'identity_strategy' => 'always_unique',
      'context_schema' => { 'type' => 'object' },
      'steps' => [
        { 'name' => 'load', 'handler' => 'payments.load' },
        { name: 'refund', handler: 'payments.refund', depends_on: ['load'], handler_config: { 'gw' => 'x' },
          retry: { max_attempts: 5, backoff: 'fixed', base_ms: 100 }, timeout_ms: 1000 }
      ],
      'environments' => { 'test' => { 'steps' => [{ 'name' => 'refund', 'timeout_ms' => 50 }] } }
    )
    assert_equal :IDENTITY_STRATEGY_ALWAYS_UNIQUE, t.identity_strategy
    assert_equal %w[load refund], t.steps.map(&:name)
    refund = t.steps[1]
    assert_equal ['load'], refund.depends_on.to_a
    assert_equal({ 'gw' => 'x' }, Tasker::Convert.from_struct(refund.handler_config))
    assert_equal [5, :BACKOFF_FIXED, 100], [refund.retry.max_attempts, refund.retry.backoff, refund.retry.base_ms]
    refute refund.retry.has_max_ms?
    assert_equal 50, t.environments['test'].steps.first.timeout_ms
    assert_nil t.steps[0].retry
  end

  def test_passes_protos_through
    proto = Tasker::V1::TaskTemplate.new(name: 'x')
    assert_same proto, Tasker::TemplateBuilder.build(proto)
  end
end
