#!/usr/bin/env bash
# The whole test suite, from a fresh Debian 12 machine: installs what is missing, then
#  0. formatting: every tracked C++ source as .clang-format says (scripts/format.sh --check)
#  1. release build: unit + integration tests (ctest; APK fixtures built with real Android tools)
#  2. AddressSanitizer + UndefinedBehaviorSanitizer build: the same tests
#  3. clang libFuzzer build: each fuzz target for FUZZ_SECONDS (default 15) over a seed corpus
# Usage: scripts/test.sh [-R REGEX]   (extra arguments go to ctest; set SKIP_FORMAT=1,
# SKIP_SANITIZE=1 or SKIP_FUZZ=1 to shorten a local run — CI runs everything)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test

# Each stage says how long it took, so that a slow CI run shows where its minutes went.
stage_started=$SECONDS
stage() {
  echo "== (previous stage: $((SECONDS - stage_started)) s) $*"
  stage_started=$SECONDS
}

run_ctest() {
  local dir=$1; shift
  ctest --test-dir "$dir" --output-on-failure -j"$(nproc)" --timeout 900 "$@"
}

# First, because it takes seconds and a formatting slip should not wait for an hour of tests.
if [[ "${SKIP_FORMAT:-0}" != 1 ]]; then
  stage "formatting check"
  scripts/format.sh --check
fi

stage "release build and tests"
scripts/build.sh release
run_ctest build "$@"

if [[ "${SKIP_SANITIZE:-0}" != 1 ]]; then
  stage "ASan + UBSan build and tests"
  scripts/build.sh sanitize
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_ctest build-sanitize "$@"
fi

if [[ "${SKIP_FUZZ:-0}" != 1 ]]; then
  stage "libFuzzer targets"
  scripts/build.sh fuzz
  scripts/fuzz.sh "${FUZZ_SECONDS:-15}"
fi
stage "all test stages passed (total $SECONDS s)"
