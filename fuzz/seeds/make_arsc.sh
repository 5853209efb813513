#!/usr/bin/env bash
# Writes resources.arsc seeds for the arsc fuzzer into OUTDIR, taken from androguard's example APKs
# with the smallest resource tables. Usage: fuzz/seeds/make_arsc.sh OUTDIR
set -euo pipefail
out=${1:?usage: make_arsc.sh OUTDIR}
mkdir -p "$out"
examples=/usr/share/doc/androguard/examples/tests
[[ -d $examples ]] || exit 0
for apk in com.politedroid_4 duplicate.permisssions_9999999 a2dp.Vol_137 com.teleca.jamendo_35; do
  [[ -f $examples/$apk.apk ]] && unzip -p "$examples/$apk.apk" resources.arsc >"$out/seed-$apk.arsc"
done
for apk in "$examples"/urzip-*.apk; do
  [[ -f $apk ]] && unzip -p "$apk" resources.arsc >"$out/seed-urzip.arsc"
done
exit 0
