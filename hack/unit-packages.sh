#!/usr/bin/env bash
# Prints the packages `make test-unit` tests: each package that holds a test or fuzz target
# (or an example with an Output comment) that the envtest suites do not name.
#   $1  the envtest suites: an extended regex of top-level test names, e.g. 'TestControllers|TestE2E'
#   $2  packages left out whatever they hold: an extended regex of import paths
# A package whose only tests are envtest suites is left out rather than linked to skip them all:
# each such test binary links controller-runtime and envtest, seconds on two cores for nothing.
# The list is read from the test files (go list gives the files for the current build tags), so
# a unit test added to such a package puts the package back in by itself.
set -euo pipefail

suites="${1:?envtest suites regex}"
skip_packages="${2:-^$}"

go list -f '{{.ImportPath}}{{"\t"}}{{.Dir}}{{"\t"}}{{join .TestGoFiles " "}} {{join .XTestGoFiles " "}}' ./... |
	while IFS=$'\t' read -r pkg dir files; do
		[[ -n "${files// /}" ]] || continue
		if grep -qE -- "$skip_packages" <<<"$pkg"; then
			continue
		fi
		# shellcheck disable=SC2086 # files is a space-separated list of names without spaces
		names="$(cd "$dir" && grep -hoE '^func (Test|Fuzz)[A-Za-z0-9_]*\(' $files | sed 's/^func //; s/($//' || true)"
		if grep -vxE -- "TestMain|$suites" <<<"$names" | grep -q . ||
			(cd "$dir" && grep -qE '^[[:space:]]*// (Unordered output|Output):' $files); then
			echo "$pkg"
		fi
	done
