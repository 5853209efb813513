#!/usr/bin/env bash
# Writes small ZIP seeds for the zip fuzzer into OUTDIR: androguard's smallest example APKs
# (including apksig's deliberately odd ones) and a few archives made with Info-ZIP covering
# stored, deflated, ZIP64, data-descriptor and commented layouts. Usage: fuzz/seeds/make_zip.sh OUTDIR
set -euo pipefail
out=${1:?usage: make_zip.sh OUTDIR}
mkdir -p "$out"
examples=/usr/share/doc/androguard/examples
if [[ -d $examples ]]; then
  for apk in tests/multidex/multidex.apk axml/AndroidManifest_ShortName.apk dalvik/test/bin/Test-debug.apk \
             signing/apksig/weird-compression-method.apk signing/apksig/mismatched-compression-method.apk \
             signing/apksig/v1-only-with-nul-in-entry-name.apk signing/apksig/v2-only-truncated-cd.apk; do
    [[ -f $examples/$apk ]] && cp "$examples/$apk" "$out/seed-$(basename "$apk" .apk).zip"
  done
fi
command -v zip >/dev/null || exit 0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(
  cd "$work"
  printf 'hello hello hello hello\n' >a.txt
  printf 'stored' >b.bin
  zip -q -0 stored.zip b.bin a.txt
  zip -q -9 deflated.zip a.txt b.bin
  zip -q -fz zip64.zip a.txt b.bin
  printf 'streamed data, streamed data\n' | zip -q descriptor.zip -
  zip -q commented.zip a.txt
  printf 'an archive comment' | zip -q -z commented.zip
)
for seed in stored deflated zip64 descriptor commented; do
  cp "$work/$seed.zip" "$out/seed-infozip-$seed.zip"
done
exit 0
