# frozen_string_literal: true

require 'json'
require 'google/protobuf'
require 'google/protobuf/struct_pb'
require 'google/protobuf/timestamp_pb'

module Tasker
  # Conversions between plain Ruby values and the wire's JSON carriers:
  # UTF-8 JSON bytes (worker hot path), google.protobuf.Struct / Value
  # (application API), Timestamps and enum names.
  #
  # JSON objects become Hashes with String keys, as JSON.parse gives them.
  # Numbers that are whole and within 2**53 come back as Integer (Struct
  # carries every number as a double), so `{"count" => 3}` round-trips as 3,
  # not 3.0, exactly as a JavaScript client would see it.
  module Convert
    # Largest integer a double represents exactly.
    MAX_SAFE_INTEGER = 2**53

    module_function

    # @param value [Object] any JSON-serializable value
    # @return [String] UTF-8 JSON text as a binary string for a `bytes` field
    def to_json_bytes(value)
      JSON.generate(value).b
    end

    # @param bytes [String] UTF-8 JSON text from a `bytes` field
    # @param empty [Object] value to return for empty bytes (JSON null)
    # @return [Object] the parsed value
    def from_json_bytes(bytes, empty: nil)
      return empty if bytes.nil? || bytes.empty?

      JSON.parse(bytes.dup.force_encoding(Encoding::UTF_8))
    end

    # @param hash [Hash, nil] a JSON object (String or Symbol keys)
    # @return [Google::Protobuf::Struct, nil]
    def to_struct(hash)
      return nil if hash.nil?

      fields = hash.to_h.each_with_object({}) { |(k, v), acc| acc[k.to_s] = to_value(v) }
      Google::Protobuf::Struct.new(fields: fields)
    end

    # @param struct [Google::Protobuf::Struct, nil]
    # @return [Hash] String keys; empty when struct is nil
    def from_struct(struct)
      return {} if struct.nil?

      struct.fields.each_with_object({}) { |(k, v), acc| acc[k] = from_value(v) }
    end

    # @param obj [Object] a JSON value; Symbols become Strings, other objects
    #   go through their JSON representation
    # @return [Google::Protobuf::Value]
    def to_value(obj)
      case obj
      when nil then Google::Protobuf::Value.new(null_value: :NULL_VALUE)
      when true, false then Google::Protobuf::Value.new(bool_value: obj)
      when Numeric then Google::Protobuf::Value.new(number_value: obj.to_f)
      when String, Symbol then Google::Protobuf::Value.new(string_value: obj.to_s)
      when Hash then Google::Protobuf::Value.new(struct_value: to_struct(obj))
      when Array
        Google::Protobuf::Value.new(list_value: Google::Protobuf::ListValue.new(values: obj.map { |v| to_value(v) }))
      else to_value(JSON.parse(JSON.generate(obj)))
      end
    end

    # @param value [Google::Protobuf::Value, nil]
    # @return [Object] nil, true/false, Integer/Float, String, Array or Hash
    def from_value(value)
      return nil if value.nil?

      case value.kind
      when :number_value then number(value.number_value)
      when :string_value then value.string_value
      when :bool_value then value.bool_value
      when :struct_value then from_struct(value.struct_value)
      when :list_value then value.list_value.values.map { |v| from_value(v) }
      end
    end

    # @param float [Float]
    # @return [Integer, Float] an Integer when the double holds a safe whole number
    def number(float)
      return float unless float.finite? && float == float.floor && float.abs <= MAX_SAFE_INTEGER

      float.to_i
    end

    # @param timestamp [Google::Protobuf::Timestamp, nil]
    # @return [Time, nil]
    def to_time(timestamp)
      return nil if timestamp.nil?

      Time.at(timestamp.seconds, timestamp.nanos, :nanosecond)
    end

    # @param time [Time, nil]
    # @return [Google::Protobuf::Timestamp, nil]
    def to_timestamp(time)
      return nil if time.nil?

      Google::Protobuf::Timestamp.new(seconds: time.to_i, nanos: time.nsec)
    end

    # Turns a proto enum value into the lowercase domain name.
    #
    #   Convert.enum_name(:TASK_STATE_IN_PROGRESS, 'TASK_STATE_') # => :in_progress
    #
    # @param value [Symbol, Integer] the field value (Integer when unknown)
    # @param prefix [String]
    # @return [Symbol, Integer]
    def enum_name(value, prefix)
      return value unless value.is_a?(Symbol)

      value.to_s.delete_prefix(prefix).downcase.to_sym
    end

    # Inverse of {enum_name}: `:in_progress` => `:TASK_STATE_IN_PROGRESS`.
    #
    # @param name [Symbol, String, Integer]
    # @param prefix [String]
    # @return [Symbol, Integer]
    def enum_value(name, prefix)
      return name if name.is_a?(Integer)

      str = name.to_s
      str.start_with?(prefix) ? str.to_sym : "#{prefix}#{str.upcase}".to_sym
    end
  end
end
