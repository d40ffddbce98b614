#!/usr/bin/env bash
# Fuzzes every fuzz target (each func Fuzz* in a _test.go file, found
# anew each run so none is skipped) for FUZZTIME. A crasher is written to
# the package's testdata/fuzz/<target>/ by go test and fails the run:
# commit it with the fix. A bare "context deadline exceeded" when the
# time is up, with no input written, is go1.26's coordinator race at the
# -fuzztime boundary (go.dev/issue/75804, fixed in 1.27), not a finding:
# it is reported, and the target's corpus is replayed instead.
set -euo pipefail
GO=${GO:-go}
FUZZTIME=${FUZZTIME:-5s}
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for f in $(grep -rl --include='*_test.go' '^func Fuzz' api cmd internal | sort); do
	pkg=./$(dirname "$f")
	for n in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$f"); do
		echo "fuzz $n $pkg ($FUZZTIME)"
		if "$GO" test -run='^$' -fuzz="^$n\$" -fuzztime="$FUZZTIME" "$pkg" >"$log" 2>&1; then
			tail -n 1 "$log"
			continue
		fi
		cat "$log"
		if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
			echo "fuzz $n: the -fuzztime deadline race (go.dev/issue/75804), no input found; replaying its corpus"
			"$GO" test -count=1 -run="^$n\$" "$pkg"
			continue
		fi
		exit 1
	done
done
