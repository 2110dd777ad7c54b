#!/usr/bin/env bash
# Install what the station needs into ./.venv (with --test: also what the tests need, mosquitto included).
# Works on a fresh Debian / Raspberry Pi OS with Python 3.11+; uses sudo only for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

extras=()
case "${1:-}" in
  "") ;;
  --test) extras+=(test) ;;
  *) echo "usage: $0 [--test]" >&2; exit 2 ;;
esac
# On a Raspberry Pi, gpiozero reads the help button and the door switch through lgpio
# (a wheel from piwheels/PyPI); elsewhere the pins are simulated (--simulate) or a gpio fault.
if grep -qs "Raspberry Pi" /proc/device-tree/model; then extras+=(pi); fi

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "Python 3.11 or newer is needed (found $(python3 --version 2>&1))" >&2; exit 1; }

debian_packages=()
python3 -c 'import ensurepip, venv' 2>/dev/null || debian_packages+=(python3-venv)
# Zone names (tariffs, screens) come from the system's time zone database; minimal images may lack it.
[ -d /usr/share/zoneinfo ] || debian_packages+=(tzdata)
# Help by voice ([voice] in the configuration) calls the agents through baresip; the tests call a second one.
command -v baresip >/dev/null || debian_packages+=(baresip-core)
if [[ " ${extras[*]} " == *" test "* ]]; then
  # The tests start their own brokers (never the system one) and make their own TLS certificates.
  command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || debian_packages+=(mosquitto)
  command -v openssl >/dev/null || debian_packages+=(openssl)
  # The unit's hardening is rated by systemd-analyze (tests/test_unit_hardening.py); minimal images lack it.
  command -v systemd-analyze >/dev/null || debian_packages+=(systemd)
fi
if [[ " ${extras[*]} " == *" pi "* ]]; then
  # lgpio has wheels for some Python versions only; for the others pip builds it from source.
  debian_packages+=(swig liblgpio-dev)
fi
if [ ${#debian_packages[@]} -gt 0 ]; then
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${debian_packages[@]}"
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
spec="."
if [ ${#extras[@]} -gt 0 ]; then spec=".[$(IFS=,; echo "${extras[*]}")]"; fi
.venv/bin/python -m pip install -q -e "$spec"
# The screens' translations: compiled here from screens/locale/*/LC_MESSAGES/kiosk.po (docs/screens.md).
.venv/bin/pybabel compile --statistics --domain kiosk --directory screens/locale
echo "installed: $(.venv/bin/kiosk version)"
