#!/usr/bin/env bash
# Install what the station needs into ./.venv (with --test: also what the tests need, mosquitto included).
# Works on a fresh Debian / Raspberry Pi OS with Python 3.11+; uses sudo only for apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."
. provisioning/common.sh

extras=()
case "${1:-}" in
  "") ;;
  --test) extras+=(test) ;;
  *) echo "usage: $0 [--test]" >&2; exit 2 ;;
esac
# On a Raspberry Pi, gpiozero reads the help button and the door switch through lgpio
# (a wheel from PyPI, or built from its source below); elsewhere the pins are simulated (--simulate) or a gpio fault.
if is_raspberry_pi; then extras+=(pi); fi

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
  # The crew page (crew/) is tested in headless Chromium, driven through Debian's chromedriver (docs/crew.md).
  command -v chromium >/dev/null || debian_packages+=(chromium)
  command -v chromedriver >/dev/null || debian_packages+=(chromium-driver)
fi
apt_install "${debian_packages[@]}"

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# (find_spec, not import: importing lgpio makes its notification pipe .lgd-nfyN in the working directory)
if [[ " ${extras[*]} " == *" pi "* ]] &&
   ! .venv/bin/python -c 'import importlib.util, sys; sys.exit(importlib.util.find_spec("lgpio") is None)'; then
  # PyPI has lgpio wheels for some Python versions only (0.2.2.0: CPython 3.9 to 3.12, aarch64 and x86_64, so
  # Debian 12's 3.11 but not Debian 13's 3.13). Without one, its source package is built with PYPI=1: the C
  # library it bundles is linked in statically, so only swig, a C compiler and the Python headers are needed
  # (Debian has no liblgpio-dev).
  if ! .venv/bin/python -m pip install -q --only-binary lgpio 'lgpio>=0.2.2' 2>/dev/null; then
    echo "no lgpio wheel for $(.venv/bin/python --version); building it from source"
    mapfile -t packages < <(missing_packages swig gcc libc6-dev python3-dev)
    apt_install "${packages[@]}"
    PYPI=1 .venv/bin/python -m pip install -q --no-binary lgpio 'lgpio>=0.2.2'
  fi
fi
spec="."
if [ ${#extras[@]} -gt 0 ]; then spec=".[$(IFS=,; echo "${extras[*]}")]"; fi
.venv/bin/python -m pip install -q -e "$spec"
# The screens' translations: compiled here from screens/locale/*/LC_MESSAGES/kiosk.po (docs/screens.md).
.venv/bin/pybabel compile --statistics --domain kiosk --directory screens/locale
if [[ " ${extras[*]} " == *" test "* ]]; then
  # The crew page's MQTT client: npm's mqtt browser bundle into crew/vendor/, pinned and checked (docs/crew.md).
  .venv/bin/python provisioning/crew_web.py
fi
echo "installed: $(.venv/bin/kiosk version)"
