# frozen_string_literal: true

require_relative 'test_helper'

class ConvertTest < Minitest::Test
  C = Tasker::Convert

  def test_struct_round_trip_keeps_whole_numbers_as_integers
    value = { 'a' => 1, 'b' => [1.5, 'x', nil, true, { 'c' => 2 }], :sym => :val, 'big' => 2**60 }
    back = C.from_struct(C.to_struct(value))
    assert_equal({ 'a' => 1, 'b' => [1.5, 'x', nil, true, { 'c' => 2 }], 'sym' => 'val', 'big' => 2.0**60 }, back)
    assert_kind_of Integer, back['a']
  end

  def test_value_round_trip_of_scalars
    [true, false, 'text', 3, -2.25, [], {}].each do |v|
      assert_equal v, C.from_value(C.to_value(v))
    end
    assert_nil C.from_value(C.to_value(nil))
    assert_nil C.from_value(nil)
    assert_equal({}, C.from_struct(nil))
  end

  def test_json_bytes
    bytes = C.to_json_bytes({ 'é' => 1 })
    assert_equal Encoding::BINARY, bytes.encoding
    assert_equal({ 'é' => 1 }, C.from_json_bytes(bytes))
    assert_nil C.from_json_bytes('')
    assert_equal({}, C.from_json_bytes('', empty: {}))
    assert_equal 3, C.from_json_bytes('3')
  end

  def test_times
    time = Time.at(1_700_000_000, 123_456_789, :nanosecond)
    assert_equal time, C.to_time(C.to_timestamp(time))
    assert_nil C.to_time(nil)
    assert_nil C.to_timestamp(nil)
  end

  def test_enum_names
    assert_equal :in_progress, C.enum_name(:TASK_STATE_IN_PROGRESS, 'TASK_STATE_')
    assert_equal 42, C.enum_name(42, 'TASK_STATE_')
    assert_equal :TASK_STATE_ERROR, C.enum_value(:error, 'TASK_STATE_')
    assert_equal :TASK_STATE_ERROR, C.enum_value('TASK_STATE_ERROR', 'TASK_STATE_')
  end
end
