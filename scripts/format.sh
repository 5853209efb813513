#!/usr/bin/env bash
# Applies .clang-format to every C++ source in the tree: scripts/format.sh
cd "$(dirname "$0")/.." && git ls-files -co --exclude-standard -- '*.cc' '*.h' | xargs -r clang-format -i
