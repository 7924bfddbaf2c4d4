#!/usr/bin/env bash
# Regenerates every language binding of the wire contract in proto/tasker/v1/.
#
#   scripts/gen.sh           (npm run gen)        rewrite the committed generated trees
#   scripts/gen.sh --check   (npm run gen:check)  regenerate into a temp dir and fail,
#                                                 listing the files, if the committed
#                                                 trees differ
#
# Outputs (each tree is owned entirely by this script):
#   src/gen/                      TypeScript (ts-proto) for the server
#   clients/node/src/gen/         the same TypeScript, for the Node SDK package
#   clients/ruby/lib/tasker/v1/   Ruby messages + gRPC stubs
#   clients/python/tasker/v1/     Python messages, gRPC stubs and .pyi type stubs
#
# Toolchain (all Debian packages, no downloads):
#   protoc 3.21 (protobuf-compiler) with the well-known types from libprotobuf-dev;
#   ts-proto's protoc plugin from node_modules; grpc_tools_ruby_protoc (ruby-grpc-tools);
#   grpc_python_plugin (protobuf-compiler-grpc) for Python. Python deliberately does not
#   use `python3 -m grpc_tools.protoc`: Debian's python3-grpc-tools bundles protoc 3.5,
#   which rejects proto3 `optional` and has no --pyi_out.
#
# Output is deterministic: inputs are sorted and no generator writes timestamps.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

MODE=write
case "${1:-}" in
  '') ;;
  --check) MODE=check ;;
  *) echo "usage: scripts/gen.sh [--check]" >&2; exit 64 ;;
esac

TS_PLUGIN="$ROOT/node_modules/.bin/protoc-gen-ts_proto"
PY_PLUGIN=/usr/bin/grpc_python_plugin
WKT_INCLUDE=/usr/include
# ts-proto options:
#   outputServices=grpc-js  service definitions + typed clients for @grpc/grpc-js
#   env=node                bytes fields are Buffer
#   useDate=true            google.protobuf.Timestamp fields are Date
#   forceLong=number        64-bit integers are number (cursors and ms fit in 2^53)
#   oneof=unions-value      oneofs are { $case: 'fieldName', value: T } unions
#   useOptionals=messages   message-typed fields are optional properties
#   useExactTypes=false     fromPartial takes DeepPartial<T>; the default Exact<> signature
#                           rejects arrays of oneof literals with different $case values
#                           (e.g. a ReportBatch mixing started/completed reports)
TS_OPTS="outputServices=grpc-js,esModuleInterop=true,importSuffix=.js,env=node,useDate=true,forceLong=number,oneof=unions-value,useOptionals=messages,useExactTypes=false"

# Generated tree (relative to a generation root) -> committed tree (relative to ROOT).
TARGETS=(
  "ts:src/gen"
  "ts:clients/node/src/gen"
  "ruby/tasker/v1:clients/ruby/lib/tasker/v1"
  "python/tasker/v1:clients/python/tasker/v1"
)

die() { echo "gen.sh: $*" >&2; exit 2; }

require_tool() { # <command> <what provides it>
  command -v "$1" >/dev/null 2>&1 || die "'$1' not found; install it with: $2"
}

check_toolchain() {
  require_tool protoc "apt-get install protobuf-compiler"
  require_tool grpc_tools_ruby_protoc "apt-get install ruby-grpc-tools"
  require_tool grpc_ruby_plugin "apt-get install protobuf-compiler-grpc"
  [[ -x "$PY_PLUGIN" ]] || die "$PY_PLUGIN not found; install it with: apt-get install protobuf-compiler-grpc"
  [[ -f "$WKT_INCLUDE/google/protobuf/struct.proto" ]] ||
    die "google/protobuf well-known types not found in $WKT_INCLUDE; install them with: apt-get install libprotobuf-dev"
  [[ -x "$TS_PLUGIN" ]] || die "$TS_PLUGIN not found; install the ts-proto devDependency with: npm install"
  command -v node >/dev/null 2>&1 || die "'node' not found (needed by the ts-proto plugin); install Node.js >= 20"
}

# Writes every binding into <out>/{ts,ruby,python}.
generate() {
  local out="$1"
  local protos=()
  mapfile -t protos < <(find proto -name '*.proto' -printf '%P\n' | LC_ALL=C sort)
  [[ ${#protos[@]} -gt 0 ]] || die "no .proto files under proto/"
  mkdir -p "$out/ts" "$out/ruby" "$out/python"

  protoc -Iproto -I"$WKT_INCLUDE" \
    --plugin=protoc-gen-ts_proto="$TS_PLUGIN" \
    --ts_proto_out="$out/ts" --ts_proto_opt="$TS_OPTS" \
    "${protos[@]}"

  grpc_tools_ruby_protoc -Iproto -I"$WKT_INCLUDE" \
    --ruby_out="$out/ruby" --grpc_out="$out/ruby" \
    "${protos[@]}"

  protoc -Iproto -I"$WKT_INCLUDE" \
    --plugin=protoc-gen-grpc_python="$PY_PLUGIN" \
    --python_out="$out/python" --pyi_out="$out/python" --grpc_python_out="$out/python" \
    "${protos[@]}"
  # Makes tasker.v1 a regular package; clients/python/tasker/__init__.py belongs to the SDK.
  : > "$out/python/tasker/v1/__init__.py"
}

# Prints one line per file that differs between a generated tree and a committed one.
drift() { # <generated dir> <committed dir, relative to ROOT>
  local gen="$1" committed="$2" rel
  while IFS= read -r rel; do
    if [[ ! -f "$committed/$rel" ]]; then
      echo "  $committed/$rel (missing: not committed)"
    elif [[ ! -f "$gen/$rel" ]]; then
      echo "  $committed/$rel (stale: no longer generated)"
    elif ! cmp -s "$gen/$rel" "$committed/$rel"; then
      echo "  $committed/$rel (differs)"
    fi
  done < <(
    { find "$gen" -type f -printf '%P\n'
      [[ -d "$committed" ]] && find "$committed" -type f -not -path '*/__pycache__/*' -printf '%P\n'
    } | LC_ALL=C sort -u
  )
}

main() {
  check_toolchain
  GEN_TMP="$(mktemp -d "${TMPDIR:-/tmp}/tasker-gen.XXXXXX")"
  trap 'rm -rf "$GEN_TMP"' EXIT
  generate "$GEN_TMP"

  local target src dest report=""
  for target in "${TARGETS[@]}"; do
    src="$GEN_TMP/${target%%:*}"
    dest="${target#*:}"
    if [[ $MODE == check ]]; then
      report+="$(drift "$src" "$dest")"$'\n'
    else
      rm -rf "$dest"
      mkdir -p "$(dirname "$dest")"
      cp -R "$src" "$dest"
    fi
  done

  if [[ $MODE == check ]]; then
    report="$(printf '%s' "$report" | sed '/^$/d')"
    if [[ -n $report ]]; then
      echo "gen.sh: generated code is out of date with proto/ (run: npm run gen):" >&2
      echo "$report" >&2
      exit 1
    fi
    echo "gen.sh: generated code is up to date"
  else
    echo "gen.sh: regenerated ${TARGETS[*]#*:}"
  fi
}

main
