#!/usr/bin/env bash
# Applies .clang-format to every C++ source in the tree: scripts/format.sh
# Only checks, changing nothing (CI runs this from scripts/test.sh): scripts/format.sh --check
# The version is pinned to Debian 12's clang-format-14 (scripts/setup.sh installs it) because
# other releases format some constructs differently, and the check must not depend on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
clang_format=clang-format-14
if ! command -v "$clang_format" >/dev/null; then
  echo "format: $clang_format not found; run scripts/setup.sh --test" >&2
  exit 2
fi
case "${1:-}" in
  "")
    # Untracked new files too, so they are formatted before their first commit.
    git ls-files -z -co --exclude-standard -- '*.cc' '*.h' | xargs -0 -r "$clang_format" -i
    ;;
  --check)
    # Tracked files only: what CI checks is what was committed.
    if ! git ls-files -z -- '*.cc' '*.h' | xargs -0 -r "$clang_format" --dry-run --Werror; then
      echo "format: the files above differ from .clang-format; scripts/format.sh fixes them" >&2
      exit 1
    fi
    ;;
  *)
    echo "usage: $0 [--check]" >&2
    exit 2
    ;;
esac
