#!/usr/bin/env bash
# The main job: installs what is missing, builds appban, and runs it.
#   scripts/run.sh                 inspect a sample APK (one of those Debian's androguard ships)
#   scripts/run.sh ARGS...         run `appban ARGS...` (e.g. scripts/run.sh inspect my.apk --json)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --run
scripts/build.sh release
if (($# == 0)); then
  set -- inspect /usr/share/doc/androguard/examples/android/TestsAndroguard/bin/TestActivity.apk
fi
exec build/appban "$@"
