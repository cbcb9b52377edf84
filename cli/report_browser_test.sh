#!/usr/bin/env bash
# File: cli/report_browser_test.sh
#
# Loads the page `hmmref report` writes in headless Chromium and checks that
# the browser's DOM has every section, so the page parses as a browser sees
# it, not only as report_test's string checks do. Tagged manual (it needs the
# Debian `chromium` package); .ci/run installs chromium and runs it.
#
# Usage: report_browser_test.sh HMMREF   (Bazel passes it; cli/BUILD)
set -uo pipefail

hmmref=$1
tmp=${TEST_TMPDIR:-$(mktemp -d)}
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

if ! command -v chromium >/dev/null 2>&1; then
  echo "FAIL: chromium is not installed (apt-get install chromium; .ci/run does)" >&2
  exit 1
fi

if ! "$hmmref" report --out "$tmp/report" --runs 20 --quiet >"$tmp/out" 2>"$tmp/err"; then
  fail "hmmref report exited $?: $(cat "$tmp/err")"
fi

# HOME and the profile must be writable inside the sandbox.
HOME=$tmp timeout 120 chromium --headless --no-sandbox --disable-gpu \
  --disable-background-networking --disable-component-update --disable-sync \
  --no-first-run --user-data-dir="$tmp/profile" \
  --dump-dom "file://$tmp/report/index.html" >"$tmp/dom.html" 2>"$tmp/chromium.log" ||
  fail "chromium exited $?: $(tail -n 3 "$tmp/chromium.log")"

for id in summary traceability lemmas suites diagrams traces; do
  grep -q "<section id=\"$id\">" "$tmp/dom.html" || fail "section '$id' missing from the DOM"
done
grep -q "<table class=\"lanes\">" "$tmp/dom.html" || fail "no sequence diagram in the DOM"

if [[ $failures -ne 0 ]]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "PASS"
