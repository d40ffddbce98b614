#!/usr/bin/env bash
# Writes the tables the fault tests left in DIR (one NAME.txt each, see
# faultTable in internal/e2e/report_test.go) into DOC, between the lines
# "<!-- faults:NAME -->" and "<!-- /faults:NAME -->", as code blocks.
# A table the run did not produce (a test skipped) is left as it was.
set -euo pipefail
dir=$1
doc=$2
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
awk -v dir="$dir" -v stamp="$(date -u +%Y-%m-%d)" '
	/^<!-- faults:[a-z0-9-]+ -->$/ {
		print
		name = $0
		sub(/^<!-- faults:/, "", name)
		sub(/ -->$/, "", name)
		file = dir "/" name ".txt"
		if ((getline line < file) > 0) {
			print "```"
			print line
			while ((getline line < file) > 0) print line
			print "```"
			print "(run of " stamp ")"
			skip = 1
		}
		next
	}
	/^<!-- \/faults:[a-z0-9-]+ -->$/ { skip = 0 }
	!skip { print }
' "$doc" >"$tmp"
cat "$tmp" >"$doc"
