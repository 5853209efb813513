#!/usr/bin/env bash
# Runs every libFuzzer target in build-fuzz/ for SECONDS each (default 15), seeded from
# fuzz/seeds/<target>/ and from the APK fixtures. Fails if any target finds a crash, leak or hang.
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-15}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
shopt -s nullglob
targets=(build-fuzz/fuzz/appban_*_fuzz)
((${#targets[@]} > 0)) || { echo "fuzz: no targets built in build-fuzz/" >&2; exit 1; }
failed=0
for target in "${targets[@]}"; do
  name=$(basename "$target"); name=${name#appban_}; name=${name%_fuzz}
  corpus="$work/$name"; mkdir -p "$corpus"
  [[ -d fuzz/seeds/$name ]] && cp -r fuzz/seeds/$name/. "$corpus/"
  [[ -x fuzz/seeds/make_$name.sh ]] && fuzz/seeds/make_$name.sh "$corpus"
  echo "fuzz: $name for ${seconds}s ($(ls "$corpus" | wc -l) seeds)"
  if ! "$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=1048576 \
       -artifact_prefix="$work/" -print_final_stats=0 "$corpus" >"$work/$name.log" 2>&1; then
    echo "fuzz: $name FAILED" >&2; tail -40 "$work/$name.log" >&2; failed=1
  fi
done
exit $failed
