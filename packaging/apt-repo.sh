#!/usr/bin/env bash
# Lays out a signed APT repository of appban packages that a department can serve or mirror
# (docs/packaging.md): pool/main/<package>/*.deb, dists/SUITE/main/binary-ARCH/Packages{,.gz},
# dists/SUITE/Release with its detached signature Release.gpg and the signed InRelease.
# Adding packages to an existing repository re-indexes the whole pool and signs again.
# Usage: packaging/apt-repo.sh REPO_DIR --key KEY [--suite SUITE] DEB...
#   --key    the GnuPG key (id, fingerprint or user id) that signs Release; GNUPGHOME applies
#   --suite  the suite and codename (default bookworm)
set -euo pipefail
# apt-ftparchive (apt-utils) and gpg: installed when missing.
"$(dirname "$0")/../scripts/setup.sh" --package

repo=""
key=""
suite=bookworm
debs=()
while (($#)); do
  case "$1" in
    --key) key=$2; shift 2 ;;
    --suite) suite=$2; shift 2 ;;
    -*) echo "apt-repo: unknown option $1" >&2; exit 2 ;;
    *) if [[ -z "$repo" ]]; then repo=$1; else debs+=("$1"); fi; shift ;;
  esac
done
if [[ -z "$repo" || -z "$key" ]]; then
  echo "usage: $0 REPO_DIR --key KEY [--suite SUITE] DEB..." >&2
  exit 2
fi
if [[ ! "$suite" =~ ^[a-z0-9][a-z0-9.-]*$ ]]; then
  echo "apt-repo: '$suite' is not a suite name" >&2
  exit 2
fi

mkdir -p "$repo"
repo=$(cd "$repo" && pwd)
for deb in "${debs[@]}"; do
  package=$(dpkg-deb --field "$deb" Package)
  install -d -m 0755 "$repo/pool/main/$package"
  install -m 0644 "$deb" "$repo/pool/main/$package/"
done
shopt -s nullglob
pool=("$repo"/pool/main/*/*.deb)
((${#pool[@]})) || { echo "apt-repo: no packages in $repo/pool" >&2; exit 2; }

# Architecture-independent packages are listed in every architecture's index, as APT expects.
architectures=$(for deb in "${pool[@]}"; do dpkg-deb --field "$deb" Architecture; done | grep -vx all | sort -u)
[[ -n "$architectures" ]] || architectures=$(dpkg --print-architecture)
cd "$repo"
for arch in $architectures; do
  dir="dists/$suite/main/binary-$arch"
  install -d -m 0755 "$dir"
  apt-ftparchive --arch "$arch" packages pool > "$dir/Packages"
  gzip -9n < "$dir/Packages" > "$dir/Packages.gz"
done
apt-ftparchive \
  -o APT::FTPArchive::Release::Origin=appban \
  -o APT::FTPArchive::Release::Label=appban \
  -o "APT::FTPArchive::Release::Suite=$suite" \
  -o "APT::FTPArchive::Release::Codename=$suite" \
  -o APT::FTPArchive::Release::Components=main \
  -o "APT::FTPArchive::Release::Architectures=$(echo $architectures)" \
  -o "APT::FTPArchive::Release::Description=appban packages" \
  release "dists/$suite" > "dists/$suite/Release.new"
mv "dists/$suite/Release.new" "dists/$suite/Release"
rm -f "dists/$suite/Release.gpg" "dists/$suite/InRelease"
gpg --batch --yes --local-user "$key" --armor --detach-sign --output "dists/$suite/Release.gpg" "dists/$suite/Release"
gpg --batch --yes --local-user "$key" --clearsign --output "dists/$suite/InRelease" "dists/$suite/Release"
echo "$repo: suite $suite, ${#pool[@]} package(s), signed by $key"
