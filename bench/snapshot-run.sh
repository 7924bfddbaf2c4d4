#!/usr/bin/env bash
# Runs the bench on a frozen copy of the code while the working tree is being edited:
# the tree of BENCH_REF (default HEAD) is exported into a temporary directory, the
# working tree's bench/ and clients/ are copied over it (they may not be committed
# yet), node_modules is linked, and `bench/run.ts` runs there with the arguments
# given. BENCH_REF=worktree copies the whole working tree as it is at that moment
# instead. Results land in this tree's bench/results/. Read-only for git.
#
#   bash bench/snapshot-run.sh throughput --profile
#   BENCH_REF=0202f65 bash bench/snapshot-run.sh all
#   BENCH_REF=worktree bash bench/snapshot-run.sh all
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ref=${BENCH_REF:-HEAD}
snap=$(mktemp -d "${TMPDIR:-/tmp}/tasker-bench-snap-XXXXXX")
trap 'rm -rf "$snap"' EXIT
excludes=(--exclude='./bench/results' --exclude='node_modules' --exclude='__pycache__' --exclude='./.git' --exclude='./dist' --exclude='./.tasker-data')
if [ "$ref" = worktree ]; then
  head=$(git -C "$root" rev-parse HEAD)
  changed=$(git -C "$root" --no-optional-locks status --porcelain -- src sql migrations | wc -l)
  (cd "$root" && tar -c "${excludes[@]}" .) | tar -x -C "$snap"
  source="copy of the working tree at $(date -u +%Y-%m-%dT%H:%M:%SZ): ${head} + ${changed} uncommitted change(s) in src/, sql/, migrations/"
else
  commit=$(git -C "$root" rev-parse --verify "$ref^{commit}")
  git -C "$root" archive "$commit" | tar -x -C "$snap"
  rm -rf "$snap/bench" "$snap/clients"
  (cd "$root" && tar -c "${excludes[@]}" ./bench ./clients) | tar -x -C "$snap"
  source="snapshot of ${commit} (${ref}); bench/ and clients/ from the working tree"
fi
ln -s "$root/node_modules" "$snap/node_modules"
echo "bench: ${source}; running in ${snap}"
status=0
(cd "$snap" && BENCH_SOURCE="$source" node --import tsx bench/run.ts "$@") || status=$?
mkdir -p "$root/bench/results"
if [ -d "$snap/bench/results" ]; then cp -r "$snap/bench/results/." "$root/bench/results/"; fi
exit "$status"
