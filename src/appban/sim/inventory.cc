#include "appban/sim/inventory.h"

#include <algorithm>
#include <array>
#include <random>

namespace appban::sim {
namespace {

// Package names as they appear in Debian 12 (bookworm) on desktop workstations: base system,
// desktop, office, development and network tools. Only the names matter; versions are made up.
constexpr std::array<std::string_view, 340> kCommonDebPackages = {
    "acl",
    "adduser",
    "adwaita-icon-theme",
    "alsa-utils",
    "anacron",
    "apparmor",
    "apt",
    "apt-utils",
    "aptitude",
    "aspell",
    "at-spi2-core",
    "avahi-daemon",
    "base-files",
    "base-passwd",
    "bash",
    "bash-completion",
    "bc",
    "bind9-dnsutils",
    "bind9-host",
    "binutils",
    "bluez",
    "bsdextrautils",
    "bsdutils",
    "build-essential",
    "bzip2",
    "ca-certificates",
    "cifs-utils",
    "coreutils",
    "cpio",
    "cron",
    "cups",
    "cups-browsed",
    "cups-filters",
    "curl",
    "dash",
    "dbus",
    "dbus-user-session",
    "dconf-cli",
    "debconf",
    "debian-archive-keyring",
    "debianutils",
    "desktop-base",
    "diffutils",
    "dirmngr",
    "dmidecode",
    "dmsetup",
    "dnsmasq-base",
    "dosfstools",
    "dpkg",
    "dpkg-dev",
    "e2fsprogs",
    "ed",
    "eject",
    "emacs-nox",
    "eog",
    "evince",
    "evolution",
    "exfatprogs",
    "file",
    "file-roller",
    "findutils",
    "firefox-esr",
    "firmware-linux-free",
    "fontconfig",
    "fonts-dejavu-core",
    "fonts-liberation",
    "fonts-noto-core",
    "fonts-noto-color-emoji",
    "foomatic-db-engine",
    "fuse3",
    "fwupd",
    "g++",
    "gawk",
    "gcc",
    "gdb",
    "gdisk",
    "gdm3",
    "gedit",
    "gettext-base",
    "ghostscript",
    "gimp",
    "git",
    "git-man",
    "gkbd-capplet",
    "gnome-calculator",
    "gnome-calendar",
    "gnome-control-center",
    "gnome-disk-utility",
    "gnome-keyring",
    "gnome-online-accounts",
    "gnome-screenshot",
    "gnome-session",
    "gnome-settings-daemon",
    "gnome-shell",
    "gnome-software",
    "gnome-system-monitor",
    "gnome-terminal",
    "gnome-tweaks",
    "gnupg",
    "gpg",
    "gpg-agent",
    "gpgv",
    "grep",
    "groff-base",
    "grub-common",
    "grub-efi-amd64",
    "grub2-common",
    "gstreamer1.0-libav",
    "gstreamer1.0-plugins-good",
    "gvfs",
    "gvfs-backends",
    "gzip",
    "hdparm",
    "hostname",
    "htop",
    "hunspell-en-us",
    "hyphen-en-us",
    "ifupdown",
    "inetutils-telnet",
    "init",
    "init-system-helpers",
    "initramfs-tools",
    "inkscape",
    "iproute2",
    "iptables",
    "iputils-ping",
    "isc-dhcp-client",
    "iw",
    "jq",
    "kbd",
    "keyboard-configuration",
    "keepassxc",
    "klibc-utils",
    "kmod",
    "krb5-locales",
    "less",
    "libreoffice-calc",
    "libreoffice-core",
    "libreoffice-draw",
    "libreoffice-impress",
    "libreoffice-writer",
    "libc-bin",
    "libc6",
    "libc6-dev",
    "libgtk-3-0",
    "libnss-mdns",
    "libnss-systemd",
    "libpam-systemd",
    "libpam-modules",
    "libssl3",
    "libsasl2-modules",
    "linux-base",
    "linux-image-amd64",
    "locales",
    "login",
    "logrotate",
    "logsave",
    "lsb-release",
    "lshw",
    "lsof",
    "lvm2",
    "make",
    "man-db",
    "manpages",
    "mawk",
    "media-types",
    "menu",
    "mime-support",
    "modemmanager",
    "mount",
    "mtr-tiny",
    "nano",
    "nautilus",
    "ncurses-base",
    "ncurses-bin",
    "ncurses-term",
    "net-tools",
    "netbase",
    "netcat-openbsd",
    "network-manager",
    "network-manager-gnome",
    "network-manager-openvpn",
    "nfs-common",
    "nftables",
    "ntfs-3g",
    "openssh-client",
    "openssh-server",
    "openssl",
    "openvpn",
    "os-prober",
    "p7zip-full",
    "parted",
    "passwd",
    "patch",
    "pciutils",
    "perl",
    "perl-base",
    "pinentry-gnome3",
    "pipewire",
    "pipewire-pulse",
    "pkexec",
    "plymouth",
    "policykit-1",
    "poppler-utils",
    "popularity-contest",
    "powertop",
    "printer-driver-all",
    "procps",
    "psmisc",
    "pulseaudio-utils",
    "python3",
    "python3-apt",
    "python3-certifi",
    "python3-dbus",
    "python3-gi",
    "python3-minimal",
    "python3-pip",
    "python3-requests",
    "python3-venv",
    "python3-yaml",
    "qpdf",
    "readline-common",
    "remmina",
    "rsync",
    "rsyslog",
    "samba-common",
    "sane-utils",
    "screen",
    "sed",
    "sensible-utils",
    "shared-mime-info",
    "shim-signed",
    "simple-scan",
    "smartmontools",
    "snapd",
    "sqlite3",
    "ssl-cert",
    "strace",
    "sudo",
    "system-config-printer",
    "systemd",
    "systemd-sysv",
    "systemd-timesyncd",
    "sysvinit-utils",
    "tar",
    "task-desktop",
    "task-english",
    "task-gnome-desktop",
    "tasksel",
    "tcpdump",
    "thunderbird",
    "time",
    "tmux",
    "totem",
    "traceroute",
    "tree",
    "tzdata",
    "ucf",
    "udev",
    "udisks2",
    "unattended-upgrades",
    "unzip",
    "upower",
    "usb-modeswitch",
    "usbutils",
    "util-linux",
    "vim",
    "vim-common",
    "vim-runtime",
    "vim-tiny",
    "vlc",
    "wamerican",
    "wget",
    "whiptail",
    "whois",
    "wireless-regdb",
    "wireless-tools",
    "wpasupplicant",
    "x11-common",
    "x11-utils",
    "x11-xserver-utils",
    "xauth",
    "xdg-desktop-portal",
    "xdg-desktop-portal-gnome",
    "xdg-user-dirs",
    "xdg-utils",
    "xkb-data",
    "xserver-xorg",
    "xserver-xorg-input-libinput",
    "xwayland",
    "xxd",
    "xz-utils",
    "yelp",
    "zenity",
    "zip",
    "zlib1g",
    "zstd",
    "apache2-utils",
    "autoconf",
    "automake",
    "bison",
    "clang",
    "cmake",
    "default-jdk",
    "docker.io",
    "flex",
    "golang-go",
    "libtool",
    "meson",
    "ninja-build",
    "nodejs",
    "npm",
    "pkg-config",
    "postgresql-client",
    "shellcheck",
    "valgrind",
    "wireshark",
    "nmap",
    "gparted",
    "chromium",
    "transmission-gtk",
    "audacity",
    "pdfarranger",
    "hplip",
    "libnotify-bin",
    "flatpak",
    "gnome-maps",
    "gnome-weather",
    "cheese",
    "rhythmbox",
    "shotwell",
    "seahorse",
    "baobab",
    "gnome-characters",
    "gnome-contacts",
    "gnome-font-viewer",
    "gnome-logs",
    "gnome-music",
    "brasero",
    "gnome-clocks",
};

// A plausible Debian version: upstream x.y.z and a Debian revision.
std::string MakeVersion(std::mt19937_64& rng) {
  std::uniform_int_distribution<int> major(0, 9), minor(0, 30), patch(0, 20), revision(1, 4);
  return std::to_string(major(rng)) + "." + std::to_string(minor(rng)) + "." + std::to_string(patch(rng)) + "-" +
         std::to_string(revision(rng));
}

}  // namespace

std::span<const std::string_view> CommonDebPackages() { return kCommonDebPackages; }

Result<std::vector<policy::InstalledApp>> ParseAppList(std::string_view text) {
  std::vector<policy::InstalledApp> apps;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (item.empty()) continue;
    size_t colon = item.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == item.size()) {
      return Status::InvalidArgument("app \"" + std::string(item) +
                                     "\": expected platform:identifier, e.g. deb:wechat");
    }
    auto platform = policy::ParsePlatform(item.substr(0, colon));
    if (!platform.ok()) return platform.status().WithContext("app \"" + std::string(item) + "\"");
    policy::InstalledApp app;
    app.platform = *platform;
    app.id = std::string(item.substr(colon + 1));
    apps.push_back(std::move(app));
  }
  return apps;
}

namespace {
std::mt19937_64 GeneratorFor(uint64_t seed, uint64_t stream) {
  // seed_seq spreads (seed, stream) so neighbouring device indexes get unrelated streams.
  std::seed_seq seq{static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32), static_cast<uint32_t>(stream),
                    static_cast<uint32_t>(stream >> 32)};
  return std::mt19937_64(seq);
}
}  // namespace

Result<AppCatalog> AppCatalog::Make(InventoryOptions options) {
  if (options.min_apps > options.max_apps) return Status::InvalidArgument("inventory: min_apps exceeds max_apps");
  if (!(options.banned_fraction >= 0 && options.banned_fraction <= 1)) {
    return Status::InvalidArgument("inventory: banned fraction must be within [0, 1]");
  }
  if (options.banned.size() > 1000) return Status::InvalidArgument("inventory: more than 1000 banned apps");
  AppCatalog catalog;
  // Stream ~0 is reserved for the catalog's versions; devices use their index.
  std::mt19937_64 rng = GeneratorFor(options.seed, ~uint64_t{0});
  for (std::string_view name : kCommonDebPackages) {
    policy::InstalledApp app;
    app.platform = policy::Platform::kDeb;
    app.id = std::string(name);
    app.version = MakeVersion(rng);
    catalog.apps_.push_back(std::move(app));
  }
  catalog.common_count_ = catalog.apps_.size();
  for (policy::InstalledApp app : options.banned) {
    if (app.version.empty()) app.version = MakeVersion(rng);
    catalog.apps_.push_back(std::move(app));
  }
  catalog.options_ = std::move(options);
  return catalog;
}

std::vector<AppIndex> AppCatalog::DeviceApps(uint64_t device_index) const {
  std::mt19937_64 rng = GeneratorFor(options_.seed, device_index);
  size_t lowest = std::min(options_.min_apps, common_count_);
  size_t highest = std::clamp(options_.max_apps, lowest, common_count_);
  size_t count = std::uniform_int_distribution<size_t>(lowest, highest)(rng);

  std::vector<AppIndex> common(common_count_);
  for (size_t i = 0; i < common.size(); ++i) common[i] = static_cast<AppIndex>(i);
  // Partial Fisher–Yates: the first `count` entries become a uniform sample without replacement.
  for (size_t i = 0; i < count; ++i) {
    std::swap(common[i], common[std::uniform_int_distribution<size_t>(i, common.size() - 1)(rng)]);
  }
  common.resize(count);

  size_t banned_total = apps_.size() - common_count_;
  if (banned_total > 0 && std::uniform_real_distribution<double>(0, 1)(rng) < options_.banned_fraction) {
    size_t banned_count = std::min<size_t>(banned_total, std::uniform_int_distribution<size_t>(1, 2)(rng));
    std::vector<AppIndex> banned(banned_total);
    for (size_t i = 0; i < banned.size(); ++i) banned[i] = static_cast<AppIndex>(common_count_ + i);
    for (size_t i = 0; i < banned_count; ++i) {
      std::swap(banned[i], banned[std::uniform_int_distribution<size_t>(i, banned.size() - 1)(rng)]);
      common.push_back(banned[i]);
    }
  }
  std::sort(common.begin(), common.end());
  common.erase(std::unique(common.begin(), common.end()), common.end());
  return common;
}

std::vector<policy::InstalledApp> AppCatalog::Materialize(std::span<const AppIndex> apps) const {
  std::vector<policy::InstalledApp> out;
  out.reserve(apps.size());
  for (AppIndex index : apps) out.push_back(apps_.at(index));
  return out;
}

}  // namespace appban::sim
