#!/usr/bin/env bash
# The main job: installs what is missing, builds appban, and runs the appban server on the embedded
# SQLite database in ./appban-data (TLS on port 8443; the first start creates the CA, the policy
# signing key and a one-time admin token, and prints how to enrol a device).
#   scripts/run.sh                 run `appban server --data-dir ./appban-data`
#   scripts/run.sh ARGS...         run `appban ARGS...` instead (e.g. scripts/run.sh inspect my.apk)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --run
scripts/build.sh release
if (($# == 0)); then
  set -- server --data-dir ./appban-data
fi
exec build/appban "$@"
