#!/usr/bin/env bash
# Builds the Debian packages of appban from this tree (docs/packaging.md):
#   appban         the binary (/usr/bin/appban), its data files (/usr/share/appban), man page, docs
#   appban-server  the hardened systemd unit and /etc/appban/server.toml (not started on install)
#   appban-agent   the agent's systemd unit; purging it removes the APT/dpkg hooks and pins the
#                  agent wrote and its state
# Usage: packaging/build-debs.sh OUTDIR [--version UPSTREAM-REVISION] [--binary PATH]
#   --version  the Debian version (default: the CMake project version, revision 1)
#   --binary   an appban binary already built (default: build/appban, built first when missing)
set -euo pipefail
cd "$(dirname "$0")/.."
tree=$PWD
# dpkg-deb, dpkg-shlibdeps (dpkg-dev), binutils' strip: installed when missing.
scripts/setup.sh --package

out=""
version=""
binary=""
while (($#)); do
  case "$1" in
    --version) version=$2; shift 2 ;;
    --binary) binary=$2; shift 2 ;;
    -*) echo "build-debs: unknown option $1" >&2; exit 2 ;;
    *) out=$1; shift ;;
  esac
done
[[ -n "$out" ]] || { echo "usage: $0 OUTDIR [--version V] [--binary PATH]" >&2; exit 2; }
upstream=$(sed -n 's/^project(appban VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
version=${version:-$upstream-1}
if [[ ! "$version" =~ ^[0-9][0-9A-Za-z.+~]*-[0-9A-Za-z.+~]+$ ]]; then
  echo "build-debs: '$version' is not a Debian version of the form UPSTREAM-REVISION" >&2
  exit 2
fi
if [[ -z "$binary" ]]; then
  binary=build/appban
  [[ -x "$binary" ]] || scripts/build.sh release
fi
[[ -x "$binary" ]] || { echo "build-debs: no appban binary at $binary" >&2; exit 2; }
arch=$(dpkg --print-architecture)
maintainer="appban maintainers <appban-maintainers@example.gov>"
# Reproducible: timestamps come from the last commit when there is one, not from the clock.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}
changelog_date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# usr/share/doc/PACKAGE: the copyright file and a Debian changelog, as policy asks of every package.
add_doc() {
  local package=$1 stage=$2
  local doc="$stage/usr/share/doc/$package"
  install -d -m 0755 "$doc"
  install -m 0644 packaging/debian/copyright "$doc/copyright"
  printf '%s (%s) bookworm; urgency=medium\n\n  * Built from the appban tree by packaging/build-debs.sh.\n\n -- %s  %s\n' \
    "$package" "$version" "$maintainer" "$changelog_date" | gzip -9n > "$doc/changelog.Debian.gz"
  chmod 0644 "$doc/changelog.Debian.gz"
  # Tags that are deliberate, each with its reason (packaging/debian/*lintian-overrides).
  local overrides="$stage/usr/share/lintian/overrides/$package"
  install -d -m 0755 "$(dirname "$overrides")"
  sed "s/^\([a-z]\)/$package: \1/" packaging/debian/lintian-overrides > "$overrides"
  if [[ -f "packaging/debian/$package.lintian-overrides" ]]; then
    sed "s/^\([a-z]\)/$package: \1/" "packaging/debian/$package.lintian-overrides" >> "$overrides"
  fi
  chmod 0644 "$overrides"
}

# DEBIAN/control, md5sums and maintainer scripts, then the .deb (files owned by root).
finish() {
  local package=$1 stage=$2 architecture=$3 depends=$4 description=$5
  install -d -m 0755 "$stage/DEBIAN"
  local size
  size=$(du -sk --apparent-size "$stage" | cut -f1)
  {
    echo "Package: $package"
    echo "Version: $version"
    echo "Architecture: $architecture"
    echo "Maintainer: $maintainer"
    echo "Installed-Size: $size"
    [[ -n "$depends" ]] && echo "Depends: $depends"
    echo "Section: admin"
    echo "Priority: optional"
    echo "Homepage: https://appban.example.gov/"
    echo "Description: $description"
  } > "$stage/DEBIAN/control"
  for script in postinst prerm postrm; do
    if [[ -f "packaging/debian/$package.$script" ]]; then
      install -m 0755 "packaging/debian/$package.$script" "$stage/DEBIAN/$script"
    fi
  done
  if [[ -d "$stage/etc" ]]; then
    (cd "$stage" && find etc -type f | sed 's|^|/|' | sort) > "$stage/DEBIAN/conffiles"
    chmod 0644 "$stage/DEBIAN/conffiles"
  fi
  (cd "$stage" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | LC_ALL=C sort |
    xargs -r md5sum) > "$stage/DEBIAN/md5sums"
  chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"
  find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
  dpkg-deb --root-owner-group -Zxz --build "$stage" "$out/${package}_${version}_${architecture}.deb" >/dev/null
  echo "$out/${package}_${version}_${architecture}.deb"
}

# ---- appban: the binary and its data ----
stage="$work/appban"
install -d -m 0755 "$stage/usr/bin" "$stage/usr/share/appban" "$stage/usr/share/man/man1"
install -m 0755 "$binary" "$stage/usr/bin/appban"
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$stage/usr/bin/appban"
(cd data && find . -type d -exec install -d -m 0755 "$stage/usr/share/appban/{}" \; &&
  find . -type f -exec install -m 0644 {} "$stage/usr/share/appban/{}" \;)
gzip -9n < packaging/appban.1 > "$stage/usr/share/man/man1/appban.1.gz"
chmod 0644 "$stage/usr/share/man/man1/appban.1.gz"
add_doc appban "$stage"
for doc in README.md docs/agent.md docs/server-config.md docs/protocol.md docs/identity.md docs/mdm.md docs/operations.md; do
  gzip -9n < "$doc" > "$stage/usr/share/doc/appban/$(basename "$doc").gz"
  chmod 0644 "$stage/usr/share/doc/appban/$(basename "$doc").gz"
done
# The shared libraries the binary links, as dpkg-shlibdeps finds them (it reads debian/control).
mkdir -p "$work/shlibs/debian"
printf 'Source: appban\n\nPackage: appban\nArchitecture: any\n' > "$work/shlibs/debian/control"
shlib_depends=$(cd "$work/shlibs" && dpkg-shlibdeps -O "$stage/usr/bin/appban" 2>/dev/null |
  sed -n 's/^shlibs:Depends=//p')
[[ -n "$shlib_depends" ]] || { echo "build-debs: dpkg-shlibdeps found no libraries" >&2; exit 1; }
finish appban "$stage" "$arch" "$shlib_depends" \
  "assess, ban and remove apps on a government fleet
 appban assesses an app's privacy and security risk from its package (APK,
 IPA, app bundle, Mach-O), records a ban with its evidence under a
 two-person rule, publishes it as a signed policy, enforces it on every
 enrolled device and reports compliance device by device.
 .
 This package holds the appban command and its data files. The server and
 the Linux agent services are in appban-server and appban-agent."

# ---- appban-server: the service ----
stage="$work/appban-server"
install -d -m 0755 "$stage/lib/systemd/system" "$stage/etc/appban"
install -m 0644 packaging/appban-server.service "$stage/lib/systemd/system/appban-server.service"
# The example configuration with the packaged data directory (the agent owns /var/lib/appban).
sed -e 's|^data_dir = .*|data_dir = "/var/lib/appban-server"|' \
  -e 's|^first_admin_token_file = .*|first_admin_token_file = "/var/lib/appban-server/first-admin-token"|' \
  data/server.example.toml > "$stage/etc/appban/server.toml"
grep -q '^data_dir = "/var/lib/appban-server"$' "$stage/etc/appban/server.toml" ||
  { echo "build-debs: data/server.example.toml has no data_dir line to set" >&2; exit 1; }
grep -q '^first_admin_token_file = "/var/lib/appban-server/first-admin-token"$' "$stage/etc/appban/server.toml" ||
  { echo "build-debs: data/server.example.toml has no first_admin_token_file line to set" >&2; exit 1; }
chmod 0644 "$stage/etc/appban/server.toml"
add_doc appban-server "$stage"
finish appban-server "$stage" all "appban (>= $upstream)" \
  "appban server as a hardened systemd service
 The appban server (admin API, web console, device enrolment, check-ins,
 compliance, MDM connectors) as the systemd unit appban-server.service: a
 transient user, a read-only system and its data in /var/lib/appban-server.
 .
 The service is not started on installation: set the names its certificate
 must cover in /etc/appban/server.toml first, then enable it."

# ---- appban-agent: the Linux endpoint agent's service ----
stage="$work/appban-agent"
install -d -m 0755 "$stage/lib/systemd/system"
install -m 0644 packaging/appban-agent.service "$stage/lib/systemd/system/appban-agent.service"
add_doc appban-agent "$stage"
finish appban-agent "$stage" all "appban (>= $upstream)" \
  "appban agent: enforce app bans on Debian and Ubuntu machines
 The appban agent as the systemd unit appban-agent.service. Once enrolled
 with an appban server it removes banned deb, Flatpak and snap apps, refuses
 their installation through APT and dpkg, and reports compliance.
 .
 Purging the package removes the APT pins and hooks the agent wrote and its
 state; run \"appban agent unenrol\" first to leave the fleet cleanly."
cd "$tree"
