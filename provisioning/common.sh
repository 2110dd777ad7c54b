# shellcheck shell=bash
# Shell functions shared by setup.sh and install.sh (sourced, not run).

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# The Debian packages named that are not installed yet, one a line.
missing_packages() {
  local package
  for package in "$@"; do
    dpkg-query -W -f='${Status}\n' "$package" 2>/dev/null | grep -q "ok installed" || echo "$package"
  done
}

# apt-get install PACKAGE...: nothing at all (no update either) when none is named.
apt_install() {
  if [ $# -gt 0 ]; then
    as_root apt-get update -q
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
  fi
}

# gpiozero reads the pins through lgpio on a Raspberry Pi; elsewhere they are simulated (--simulate) or a gpio fault.
is_raspberry_pi() { grep -qs "Raspberry Pi" /proc/device-tree/model; }
