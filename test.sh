#!/usr/bin/env bash
# The project's test command: formatting, vet, the race-enabled test suite,
# the stack measurement without -race, and a brief run of every fuzz
# target. Third-party tools the end-to-end tests use are skipped when
# missing, unless CI=true (then they fail); .ci/run installs them.
set -euo pipefail
cd "$(dirname "$0")"
fuzztime=${FUZZTIME:-3s}

unformatted=$(gofmt -l .)
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...
go test -race -count=1 -timeout 20m ./...
# Memory measurements that -race would distort (they skip under -race).
go test -count=1 -run '^TestIdleSessionStack$' .

# Every fuzz target, briefly.
for file in $(grep -l '^func Fuzz' $(git ls-files '*_test.go' 2>/dev/null || find . -name '*_test.go')); do
  pkg=./$(dirname "$file")
  for target in $(grep -o '^func Fuzz[A-Za-z0-9_]*' "$file" | sed 's/^func //'); do
    echo "fuzz $pkg $target ($fuzztime)"
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg" >/tmp/fuzz.$$.log 2>&1 || { cat /tmp/fuzz.$$.log; exit 1; }
  done
done
rm -f /tmp/fuzz.$$.log
echo "all checks passed"
