#!/usr/bin/env bash
# Prints the path of the SARIF 2.1.0 JSON schema (the OASIS rtm.5 schema that the npm package
# @microsoft/jest-sarif ships), fetching it from the npm registry into a cache dir on first use.
# Usage: sarif_schema.sh CACHE_DIR
set -euo pipefail
cache=$1
schema=$cache/sarif-2.1.0-rtm.5.json
if [[ ! -s $schema ]]; then
  mkdir -p "$cache"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && npm pack --silent @microsoft/jest-sarif@1.0.0-beta.0 >/dev/null && tar xzf ./*.tgz)
  cp "$work/package/lib/schemas/sarif-2.1.0-rtm.5.json" "$schema.tmp" && mv "$schema.tmp" "$schema"
fi
echo "$schema"
