# frozen_string_literal: true

module Tasker
  # Version of the tasker-client gem, announced to the server in Hello.sdk_version.
  VERSION = '0.1.0'
end
