#!/usr/bin/env bash
# Turns a fresh Raspberry Pi OS Lite (Debian 12 or 13) into a pay station, idempotently (docs/provisioning.md).
set -Eeuo pipefail
shopt -s lastpipe  # `... | put FILE` runs put in this shell, so that it can note what it changed
umask 022

usage() {
  cat <<'EOF'
usage: sudo provisioning/install.sh --station-id ID
           [--terminal-port PATH | --terminal-usb VID:PID[:SERIAL]]
           [--broker-host HOST] [--broker-credentials certificate|password|none]
           [--no-display-setup] [--release-key FILE.pem ...]

  --station-id ID           the station's id (MQTT client id and topic); needed the first time only
  --terminal-port PATH      the card terminal is on this serial port (a Pi UART: /dev/serial0, /dev/ttyAMA0)
  --terminal-usb VID:PID[:SERIAL]
                            the card terminal is the USB serial adapter with this vendor and product id
                            (and serial number); without either: the first USB serial adapter (ttyUSB0)
                            or else the first USB modem-class device (ttyACM0)
  --broker-host HOST        the operator's MQTT broker (empty: everything waits in the outbox)
  --broker-credentials KIND certificate: a key and a signing request made here; password: a password made
                            here; none: neither (the default)
  --no-display-setup        leave the boot configuration and the default target alone
  --release-key FILE.pem    trust this public key's signatures on release bundles (remote updates); may be
                            given more than once (provisioning/release.py keygen makes the keys)

Options left out keep what an earlier run set up. docs/provisioning.md walks through it all.
EOF
}

say() { printf '%s\n' "$*"; }
# Release code runs as the station's user, in a session of its own: without root's terminal (no TIOCSTI into it).
as_kiosk() { (cd / && setsid -w runuser -u kiosk -- "$@"); }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }
trap 'printf "install.sh: failed (exit %s) at line %s: %s\n" "$?" "$LINENO" "$BASH_COMMAND" >&2' ERR
# A run that stopped the station for an upgrade and then failed starts it again once the new code is in place and its
# configuration validates, and otherwise says that it is stopped: a failed run must not leave a station dark without
# a word, nor start one that would only fail again (and, ten starts later, reboot the Pi).
kiosk_stopped=no code_installed=no
on_exit() {
  local rc=$?
  trap '' HUP INT TERM  # a second hang-up must not cut this short
  set +e  # whatever fails here (even writing to a terminal that hung up), the station's fate is decided
  trap - ERR  # the failure was reported already
  if [ $rc -ne 0 ] && [ $kiosk_stopped = yes ] && ! systemctl -q is-active kiosk.service; then
    if [ $code_installed = yes ] && (cd / && setsid -w runuser -u kiosk -- /var/lib/kiosk/updates/current/.venv/bin/kiosk \
        check-config /etc/kiosk/kiosk.toml >/dev/null 2>&1); then
      if systemctl start kiosk.service; then
        printf 'install.sh: kiosk started again (it was stopped for the upgrade)\n' >&2
      else
        printf 'install.sh: kiosk was stopped for the upgrade and does not start again: journalctl -u kiosk\n' >&2
      fi
    else
      printf 'install.sh: kiosk is stopped (for an upgrade that did not finish): fix the cause and run install.sh again\n' >&2
    fi
  fi
  return $rc
}
trap on_exit EXIT
# A hang-up (the SSH session dropped), Ctrl-C or a kill still leave through on_exit, with a failing status.
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "run it as root (there is no sudo)"
  exec sudo -- "$0" "$@"
fi

station_id="" terminal_port="" terminal_usb="" broker_host="" broker_host_given=no credentials="" display_setup=yes
release_keys=()
while [ $# -gt 0 ]; do
  case "$1" in
    --station-id) station_id=${2:?--station-id needs a value}; shift 2 ;;
    --terminal-port) terminal_port=${2:?--terminal-port needs a value}; shift 2 ;;
    --terminal-usb) terminal_usb=${2:?--terminal-usb needs a value}; shift 2 ;;
    --broker-host) broker_host=${2?--broker-host needs a value}; broker_host_given=yes; shift 2 ;;
    --broker-credentials) credentials=${2:?--broker-credentials needs a value}; shift 2 ;;
    --no-display-setup) display_setup=no; shift ;;
    --release-key) release_keys+=("${2:?--release-key needs a file}"); shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
done

[ -z "$station_id" ] || [[ $station_id =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]] ||
  die "--station-id $station_id: expected letters, digits, '_', '.', '-' (1 to 64, starting with a letter or digit)"
[ -z "$terminal_port" ] || [ -z "$terminal_usb" ] || die "give --terminal-port or --terminal-usb, not both"
[ -z "$terminal_port" ] || [[ $terminal_port =~ ^/dev/[A-Za-z0-9_./-]+$ && $terminal_port != *..* ]] ||
  die "--terminal-port $terminal_port: expected a device path such as /dev/serial0 or /dev/ttyAMA0"
[ -z "$terminal_usb" ] || [[ $terminal_usb =~ ^[0-9A-Fa-f]{4}:[0-9A-Fa-f]{4}(:[A-Za-z0-9_.-]+)?$ ]] ||
  die "--terminal-usb $terminal_usb: expected VID:PID or VID:PID:SERIAL (four hex digits each, as lsusb shows them)"
[[ $broker_host =~ ^[A-Za-z0-9.:-]*$ ]] || die "--broker-host $broker_host: expected a host name or address"
case "$credentials" in ""|certificate|password|none) ;; *) die "--broker-credentials: certificate, password or none" ;; esac
for key in "${release_keys[@]}"; do
  [ -f "$key" ] || die "--release-key $key: no such file"
  [[ $(basename "$key") =~ ^[A-Za-z0-9_.-]+\.pem$ ]] || die "--release-key $key: name it NAME.pem (letters, digits, '_', '.', '-')"
done

# ---- where things go ----
src=$(cd "$(dirname "$0")/.." && pwd -P)
# shellcheck source=provisioning/common.sh
. "$src/provisioning/common.sh"
app=/opt/kiosk  # the releases provisioning installs (root's)
updates=/var/lib/kiosk/updates  # the station's own: releases staff sent, the links current and stable (docs/updates.md)
version=$(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
          "$src/pyproject.toml")
release=$app/releases/$version
etc=/etc/kiosk
release_keys_folder=$etc/release-keys
config=$etc/kiosk.toml
tls=$etc/tls
password_file=$etc/mqtt.password
state=/var/lib/kiosk
unit=/etc/systemd/system/kiosk.service
terminal_rule=/etc/udev/rules.d/99-kiosk-terminal.rules  # after Pi OS's 99-com.rules, which makes serial0
gpio_rule=/etc/udev/rules.d/60-kiosk-gpio.rules
journald_dropin=/etc/systemd/journald.conf.d/kiosk.conf
boot=/boot/firmware
live=no; [ -d /run/systemd/system ] && live=yes  # systemd runs (not a chroot or an image being prepared)

changed=()  # files and directories this run wrote or whose mode or owner it set
todo=()     # what is left for the technician
note() { todo+=("$*"); }

# The mode and owner of PATH set where they differ ("-" leaves them, as on the boot partition's FAT).
set_attributes() {
  local path=$1 mode=$2 owner=$3
  if [ "$mode" != - ] && [ "$(stat -c %a "$path")" != "$(printf %o "$((8#$mode))")" ]; then
    chmod "$mode" "$path"; changed+=("$path (mode $mode)")
  fi
  if [ "$owner" != - ] && [ "$(stat -c %U:%G "$path")" != "$owner" ]; then
    chown "$owner" "$path"; changed+=("$path (owner $owner)")
  fi
}

# put PATH MODE OWNER:GROUP < CONTENT: replaces PATH (atomically, in its folder) only when CONTENT differs.
put() {
  local path=$1 mode=$2 owner=$3 new
  new=$(mktemp "$path.new.XXXXXX")
  cat > "$new"
  if [ -f "$path" ] && cmp -s "$new" "$path"; then
    rm -f "$new"
  else
    if [ "$mode" != - ]; then chmod "$mode" "$new"; fi
    if [ "$owner" != - ]; then chown "$owner" "$new"; fi
    sync "$new"
    mv -f "$new" "$path"
    changed+=("$path")
  fi
  set_attributes "$path" "$mode" "$owner"
}

# folder PATH MODE OWNER:GROUP
folder() {
  if [ ! -d "$1" ]; then mkdir -p "$1"; chmod "$2" "$1"; chown "$3" "$1"; changed+=("$1/"); fi
  set_attributes "$1" "$2" "$3"
}

was_changed() { local item; for item in "${changed[@]}"; do [[ $item == "$1"* ]] && return 0; done; return 1; }

# ---- 0. what this is ----
# shellcheck source=/dev/null
. /etc/os-release
case "${ID:-}:${VERSION_ID:-}" in
  debian:12|debian:13|raspbian:12|raspbian:13) ;;
  *) die "this is ${PRETTY_NAME:-an unknown system}; the station is installed on Raspberry Pi OS or Debian 12 or 13" ;;
esac
pi=no; is_raspberry_pi && pi=yes
say "== kiosk install: ${PRETTY_NAME}, $(uname -m)$([ $pi = yes ] && printf ', %s' "$(tr -d '\0' < /proc/device-tree/model)")"

existing_id=""
if [ -f "$config" ]; then
  existing_id=$(python3 "$src/provisioning/station_config.py" get "$config" station.id) ||
    die "$config exists but cannot be read (fix or move it away, then run again)"
  if [ -n "$station_id" ] && [ "$station_id" != "$existing_id" ]; then
    die "$config is for station $existing_id, not $station_id: this run changes no station's id. To make this \
device $station_id, move $config (and $tls, $password_file) away first."
  fi
  station_id=$existing_id
fi
[ -n "$station_id" ] || die "--station-id is needed (there is no $config yet)"

# ---- 1. Debian packages ----
say "-- packages"
wanted=(openssl ca-certificates systemd udev tzdata python3-venv
        # SDL's kmsdrm video driver (in pygame-ce's wheel) loads these at run time: DRM, GBM, EGL and GLES (Mesa's vc4/v3d)
        libdrm2 libgbm1 libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri)
# The station's clock matters for tariffs and TLS: keep an NTP client that is there, else systemd's.
time_sync=""
for candidate in chrony ntpsec openntpd systemd-timesyncd; do
  if [ -z "$(missing_packages "$candidate")" ]; then time_sync=$candidate; break; fi
done
if [ -z "$time_sync" ]; then time_sync=systemd-timesyncd; wanted+=(systemd-timesyncd); fi
mapfile -t missing < <(missing_packages "${wanted[@]}")
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  apt_install "${missing[@]}"
  changed+=("packages: ${missing[*]}")
fi
# python3-venv, tzdata and baresip-core (setup.sh), and on a Pi what lgpio needs: setup.sh installs them (step 3).

# ---- 2. the user kiosk and the unit's groups ----
say "-- user and groups"
# SupplementaryGroups= in the unit: systemd refuses to start it if one of them is missing (plain Debian has no gpio).
for group in dialout gpio video input render audio; do
  if ! getent group "$group" >/dev/null; then groupadd --system "$group"; changed+=("group $group"); fi
done
if ! getent passwd kiosk >/dev/null; then
  useradd --system --user-group --home-dir "$state" --no-create-home --shell /usr/sbin/nologin \
    --comment "parking pay station" kiosk
  changed+=("user kiosk")
fi
folder "$state" 0755 kiosk:kiosk  # the unit's StateDirectory= (0755 is its default mode): the database
# The GPIO chips to group gpio, unless a rule of the system does it already (Raspberry Pi OS: 99-com.rules).
gpio_rules=$(grep -lsE 'SUBSYSTEM=="gpio".*GROUP="gpio"' /usr/lib/udev/rules.d/*.rules /lib/udev/rules.d/*.rules \
             /etc/udev/rules.d/*.rules | grep -vx "$gpio_rule" || true)
if [ -z "$gpio_rules" ]; then
  put "$gpio_rule" 0644 root:root <<'EOF'
# Written by provisioning/install.sh: the GPIO chips (lgpio opens /dev/gpiochipN) to group gpio, which the
# kiosk unit's SupplementaryGroups= names.
SUBSYSTEM=="gpio", KERNEL=="gpiochip*", GROUP="gpio", MODE="0660"
EOF
fi

# ---- 3. the code: a release in /opt/kiosk/releases/VERSION with its venv ----
say "-- code: release $version in $app"
# The source: the files git tracks (as they are in the checkout), or every file of a copy without git.
source_files() {
  if [ -e "$src/.git" ] && command -v git >/dev/null; then
    git -C "$src" -c safe.directory='*' ls-files -z | while IFS= read -r -d '' file; do
      if [ -f "$src/$file" ]; then printf '%s\0' "$file"; fi
    done
  else
    (cd "$src" && find . \( -name .git -o -name .venv -o -name __pycache__ -o -name '*.egg-info' -o -name .pytest_cache \
      -o -name .hypothesis -o -name .mypy_cache -o -name .ruff_cache -o -name build -o -name var \) -prune \
      -o -type f ! -name '*.mo' ! -name '*.db' ! -name '*.db-*' ! -name '.lgd-nfy*' -printf '%P\0')
  fi | sort -z
}
stamp_file=$release/.venv/kiosk-install.stamp
stamp="source $(cd "$src" && source_files | xargs -0 -r sha256sum | sha256sum | cut -d' ' -f1)
python $(python3 -c 'import sys; print(sys.version.split()[0])')
pi $pi"
# Root's: the station cannot change what provisioning installs. It installs what staff send in $updates, its own.
folder "$app" 0755 root:root
folder "$app/releases" 0755 root:root
if [ -x "$release/.venv/bin/kiosk" ] && [ -f "$release/release.json" ] && [ "$(cat "$stamp_file" 2>/dev/null)" = "$stamp" ]
then
  say "unchanged since the last install (${stamp%%$'\n'*})"
else
  # Running, starting or restarting after a crash: stopped, so that nothing runs half-copied code.
  if [ $live = yes ] && [[ "$(systemctl is-active kiosk.service)" =~ ^(active|activating|reloading)$ ]]; then
    say "stopping kiosk for the upgrade"; kiosk_stopped=yes; systemctl stop kiosk.service
  fi
  # The layout before releases (the code and .venv straight in /opt/kiosk) goes.
  if [ -d "$app/.venv" ]; then
    find "$app" -mindepth 1 -maxdepth 1 ! -name releases -exec rm -rf {} +
  fi
  rm -f "$release/release.json"  # incomplete from here until the venv is whole again
  folder "$release" 0755 root:root
  find "$release" -mindepth 1 -maxdepth 1 ! -name .venv -exec rm -rf {} +
  # (no subshell in this pipeline: bash 5.2 then counts $LINENO wrong for the rest of the script, and the ERR
  # trap names the wrong line)
  source_files | tar -C "$src" --null -T - -cf - | tar -C "$release" --no-same-owner --no-same-permissions -xf -
  # A venv made by another Python (Debian 12 -> 13) does not work: made anew.
  if [ -f "$stamp_file" ] && [ "$(sed -n 2p "$stamp_file")" != "$(sed -n 2p <<<"$stamp")" ]; then rm -rf "$release/.venv"; fi
  say "installing the Python packages (provisioning/setup.sh)"
  "$release/provisioning/setup.sh"
  # Compiled now, as root: the station cannot write its release (and would compile at every start).
  "$release/.venv/bin/python" -m compileall -q "$release/kiosk" "$release/drivers" "$release/screens" \
    "$release/console" >/dev/null
  printf '%s\n' "$stamp" > "$stamp_file"
  sync
  printf '{"version": "%s", "installed": "%s", "by": "provisioning/install.sh"}\n' "$version" \
    "$(date -u +%Y-%m-%dT%H:%M:%S+00:00)" > "$release/release.json"
  code_installed=yes
  changed+=("$release (code: ${stamp%%$'\n'*})")
fi
# A release installed now (or the first one) is the one that runs and the proven one: linked in among the station's
# releases, a trial or a job under way ended (the technician decides). As the station's user, in its own folder.
# Otherwise a release staff sent since stays: a re-run (a new release key, say) never takes the station back.
kiosk=$updates/current/.venv/bin/kiosk
if [ $code_installed = yes ] || ! [ -f "$updates/current/release.json" ]; then
  adopted=$(as_kiosk "$release/.venv/bin/python" -m kiosk.releases.guard adopt --root "$updates" \
            --version "$version" --release "$release")
  case "$adopted" in
    "") ;;
    kept*) note "$adopted" ;;
    *) changed+=("$adopted") ;;
  esac
fi
# The technician's commands by their bare name (sudo kiosk doctor, sudo kiosk update --status): the current
# release's, always as the station's user (root never runs code the station can change).
put /usr/local/bin/kiosk 0755 root:root <<EOF
#!/bin/sh
# Written by provisioning/install.sh: the station's current release, run as its user (docs/updates.md). Root runs it
# through runuser with a terminal of its own (--pty: the station's code cannot type into root's shell); any other
# user but the station's is sent to sudo (nobody runs what the station's user can change with their own rights).
case "\$(id -u)" in
  0) exec runuser --pty -u kiosk -g kiosk -G dialout -G gpio -- $kiosk "\$@" ;;
  "\$(id -u kiosk)") exec $kiosk "\$@" ;;
  *) echo "kiosk: run it with sudo (it runs as the station's user)" >&2; exit 2 ;;
esac
EOF

# ---- 4. the broker's credentials, made here (never in the repository) ----
folder "$etc" 0750 root:kiosk
folder "$tls" 0750 root:kiosk  # the broker's CA (ca.crt) goes here whatever the credentials
# The public keys whose signatures the station accepts on a release (provisioning/release.py keygen makes them).
folder "$release_keys_folder" 0755 root:root
for key in "${release_keys[@]}"; do
  # (openssl is installed by now) an Ed25519 public key, as release.py keygen makes; the station ignores any other
  [ "$(openssl pkey -pubin -in "$key" -noout -text 2>/dev/null | head -1)" = "ED25519 Public-Key:" ] ||
    die "--release-key $key: expected an Ed25519 public key (PEM), as provisioning/release.py keygen makes"
  put "$release_keys_folder/$(basename "$key")" 0644 root:root < "$key"
done
if ! compgen -G "$release_keys_folder/*.pem" >/dev/null; then
  note "no release key in $release_keys_folder: every remote update is refused (InvalidSignature) until one is" \
       "installed with --release-key FILE (docs/updates.md)"
fi
case "$credentials" in
  certificate)
    say "-- broker credentials: key and certificate signing request"
    if [ ! -f "$tls/station.key" ]; then
      openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 2>/dev/null |
        put "$tls/station.key" 0640 root:kiosk
    fi
    set_attributes "$tls/station.key" 0640 root:kiosk
    # A request for this key with CN = the station id (made again only if the key is another or the id differs).
    key_pub=$(openssl pkey -in "$tls/station.key" -pubout)
    if [ ! -f "$tls/station.csr" ] || [ "$(openssl req -in "$tls/station.csr" -noout -pubkey 2>/dev/null)" != "$key_pub" ] ||
       [ "$(openssl req -in "$tls/station.csr" -noout -subject -nameopt compat 2>/dev/null)" != "subject=/CN=$station_id" ]; then
      openssl req -new -key "$tls/station.key" -subj "/CN=$station_id" | put "$tls/station.csr" 0644 root:root
    fi
    if [ -f "$tls/station.crt" ] &&
       [ "$(openssl x509 -in "$tls/station.crt" -noout -pubkey 2>/dev/null)" = "$key_pub" ]; then
      set_attributes "$tls/station.crt" 0644 root:root
    else
      note "sign $tls/station.csr with provisioning/fleet_ca.py sign, and copy the certificate to $tls/station.crt" \
           "and the fleet CA's certificate to $tls/ca.crt (docs/provisioning.md, step 6)"
    fi
    ;;
  password)
    say "-- broker credentials: password"
    if [ ! -f "$password_file" ]; then
      python3 -c 'import secrets, sys; sys.stdout.write(secrets.token_urlsafe(24))' | put "$password_file" 0640 root:kiosk
      note "copy $password_file to the broker host as secrets/$station_id.password and run" \
           "provisioning/broker_accounts.py there (docs/provisioning.md, step 6)"
    fi
    set_attributes "$password_file" 0640 root:kiosk
    ;;
esac
if [ "$credentials" = password ] && [ ! -f "$tls/ca.crt" ]; then
  note "copy the certificate of the CA that signed the broker's certificate to $tls/ca.crt"
fi

# ---- 5. the configuration ----
say "-- configuration $config"
settings=(station.id="$station_id" storage.database="$state/kiosk.db" terminal.port=/dev/kiosk-terminal)
if [ -n "$credentials" ] || [ ! -f "$config" ]; then
  mqtt_ca=$tls/ca.crt mqtt_cert="" mqtt_key="" mqtt_user="" mqtt_password=""
  case "$credentials" in
    certificate) mqtt_cert=$tls/station.crt mqtt_key=$tls/station.key ;;
    password) mqtt_user=$station_id mqtt_password=$password_file ;;
  esac
  settings+=(mqtt.ca_file="$mqtt_ca" mqtt.cert_file="$mqtt_cert" mqtt.key_file="$mqtt_key"
             mqtt.username="$mqtt_user" mqtt.password_file="$mqtt_password")
fi
if [ $broker_host_given = yes ] || [ ! -f "$config" ]; then settings+=(mqtt.host="$broker_host"); fi
if [ ! -f "$config" ]; then
  # voice.user: empty is the station id (the example names its own station).
  python3 "$release/provisioning/station_config.py" render "$release/provisioning/kiosk.example.toml" "${settings[@]}" \
    voice.user="" | put "$config" 0640 root:kiosk
  note "edit $config: zone, tariff, terminal password, links, gpio pins (docs/provisioning.md, step 5)"
else
  # Never replaced: what this run would have set differently is left to the technician.
  while IFS= read -r difference; do
    note "$config was kept, and its $difference: edit it if that is not meant"
  done < <(python3 "$release/provisioning/station_config.py" differ "$config" "${settings[@]}")
fi
set_attributes "$config" 0640 root:kiosk
# As the station's user: it can read the file, and the file is valid.
as_kiosk "$kiosk" check-config "$config" || die "$config is not valid (see above): fix it and run again"

# ---- 6. the card terminal's stable name: /dev/kiosk-terminal ----
# "ttyUSB0 0403:6001:A1B2C3, ..." (what --terminal-usb takes), or "none".
usb_serial_devices() {
  local tty found=""
  for tty in /sys/class/tty/ttyUSB* /sys/class/tty/ttyACM*; do
    [ -e "$tty" ] || continue
    found+="${found:+, }${tty##*/} $(udevadm info --query=property --path="$tty" |
      sed -n 's/^ID_VENDOR_ID=//p; s/^ID_MODEL_ID=//p; s/^ID_SERIAL_SHORT=//p' | paste -sd:)"
  done
  printf '%s' "${found:-none}"
}
say "-- card terminal: /dev/kiosk-terminal"
rule=""
if [ -n "$terminal_usb" ]; then
  IFS=: read -r vid pid serial <<<"$terminal_usb"
  match="ATTRS{idVendor}==\"${vid,,}\", ATTRS{idProduct}==\"${pid,,}\""
  if [ -n "$serial" ]; then match+=", ATTRS{serial}==\"$serial\""; fi
  rule="SUBSYSTEM==\"tty\", $match, SYMLINK+=\"kiosk-terminal\""
  how="the USB serial adapter $terminal_usb (--terminal-usb)"
elif [ -n "$terminal_port" ]; then
  name=${terminal_port#/dev/}
  if [[ $name =~ ^tty[A-Za-z]+[0-9]+$ ]]; then match="KERNEL==\"$name\""; else match="SYMLINK==\"$name\""; fi
  rule="SUBSYSTEM==\"tty\", $match, SYMLINK+=\"kiosk-terminal\""
  how="$terminal_port (--terminal-port)"
elif [ ! -f "$terminal_rule" ]; then
  rule="SUBSYSTEM==\"tty\", KERNEL==\"ttyUSB0\", SYMLINK+=\"kiosk-terminal\", OPTIONS+=\"link_priority=10\"
SUBSYSTEM==\"tty\", KERNEL==\"ttyACM0\", SYMLINK+=\"kiosk-terminal\""
  how="the first USB serial adapter (ttyUSB0), else the first USB modem-class device (ttyACM0): the default"
fi
if [ -n "$rule" ]; then
  put "$terminal_rule" 0644 root:root <<EOF
# Written by provisioning/install.sh: /dev/kiosk-terminal (terminal.port in $config) is
# $how.
$rule
EOF
fi
if [ $live = yes ]; then
  if was_changed "$terminal_rule" || was_changed "$gpio_rule"; then
    if systemctl -q is-active systemd-udevd.service; then
      udevadm control --reload
      udevadm trigger --action=add --subsystem-match=tty --subsystem-match=gpio
      udevadm settle --timeout=10 || true
    else  # a container (systemd-udevd.service: ConditionPathIsReadWrite=/sys): no udev to reload
      say "udev does not run here: the rules apply where it runs"
    fi
  fi
  if [ ! -e /dev/kiosk-terminal ]; then
    note "no card terminal at /dev/kiosk-terminal: plug it in, or give --terminal-usb VID:PID[:SERIAL]" \
         "(USB serial devices now: $(usb_serial_devices))"
  fi
fi

# ---- 7. the display: KMS, no desktop, no console blanking or cursor ----
boot_changed=no
if [ $display_setup = yes ]; then
  say "-- display"
  if [ "$(systemctl get-default 2>/dev/null)" != multi-user.target ]; then
    systemctl set-default multi-user.target 2>/dev/null
    changed+=("default target multi-user.target"); boot_changed=yes
  fi
  if [ -f "$boot/config.txt" ] && [ -f "$boot/cmdline.txt" ]; then
    for file in config.txt cmdline.txt; do  # the first version, for the technician
      [ -f "$boot/$file.before-kiosk" ] || cp -p "$boot/$file" "$boot/$file.before-kiosk"
    done
    additions=""
    # SDL's kmsdrm needs the KMS driver (Raspberry Pi OS's default; fake KMS works too).
    grep -Eq '^[[:space:]]*dtoverlay=vc4-f?kms-v3d' "$boot/config.txt" ||
      additions+="# the display through KMS (SDL's kmsdrm)"$'\n'"dtoverlay=vc4-kms-v3d"$'\n'
    # A card terminal on the Pi's UART: the UART on, and the serial console off it (below).
    uart=no; [[ $terminal_port =~ ^/dev/(serial[01]|ttyAMA[0-9]+|ttyS0)$ ]] && uart=yes
    if [ $uart = yes ] && ! grep -Eq '^[[:space:]]*enable_uart=1' "$boot/config.txt"; then
      additions+="# the card terminal on the UART"$'\n'"enable_uart=1"$'\n'
    fi
    if [ -n "$additions" ]; then
      { cat "$boot/config.txt"; printf '\n[all]\n# added by provisioning/install.sh\n%s' "$additions"; } |
        put "$boot/config.txt" - -
      boot_changed=yes
    fi
    read -r -a words < "$boot/cmdline.txt"
    kept=()
    for word in "${words[@]}"; do
      case "$word" in
        consoleblank=*|vt.global_cursor_default=*) ;;
        console=serial0,*|console=ttyAMA0,*|console=ttyS0,*) [ $uart = yes ] || kept+=("$word") ;;
        *) kept+=("$word") ;;
      esac
    done
    kept+=(consoleblank=0 vt.global_cursor_default=0)
    if [ "${kept[*]}" != "${words[*]}" ]; then
      printf '%s\n' "${kept[*]}" | put "$boot/cmdline.txt" - -
      boot_changed=yes
    fi
  else
    say "no $boot/config.txt and cmdline.txt (not a Raspberry Pi OS boot partition): KMS and the kernel command line are left alone"
  fi
fi
[ $boot_changed = no ] || note "reboot to apply the display settings (sudo reboot)"

# ---- 8. logs: persistent journal, bounded ----
say "-- journal"
folder "${journald_dropin%/*}" 0755 root:root
put "$journald_dropin" 0644 root:root <<'EOF'
# Written by provisioning/install.sh: the station's logs (journalctl -u kiosk) survive a reboot, within bounds
# that suit an SD card.
[Journal]
Storage=persistent
SystemMaxUse=200M
SystemKeepFree=500M
SystemMaxFileSize=20M
RuntimeMaxUse=20M
MaxRetentionSec=3month
EOF

# ---- 9. time sync ----
say "-- time sync: $time_sync"
if ! systemctl -q is-enabled "$time_sync.service" 2>/dev/null; then  # each package's unit has its name
  systemctl -q enable "$time_sync.service"; changed+=("$time_sync enabled")
fi

# ---- 10. the unit ----
say "-- unit $unit"
put "$unit" 0644 root:root < "$release/systemd/kiosk.service"
if ! systemctl -q is-enabled kiosk.service 2>/dev/null; then
  systemctl -q enable kiosk.service; changed+=("kiosk.service enabled")
fi

# ---- 11. a running system takes the changes now ----
if [ $live = yes ]; then
  was_changed "$unit" && systemctl daemon-reload
  if was_changed "$journald_dropin"; then systemctl restart systemd-journald; journalctl --flush || true; fi
  systemctl -q is-active "$time_sync.service" || systemctl start "$time_sync.service"
  if ! systemctl -q is-active kiosk.service; then
    systemctl start kiosk.service; say "started kiosk"
  elif was_changed "$unit" || was_changed "$config"; then
    systemctl restart kiosk.service; say "restarted kiosk"
  fi
else
  say "systemd is not running here (a chroot or an image): kiosk starts at the next boot"
fi

# ---- summary ----
say ""
say "== station $station_id: $(as_kiosk "$kiosk" version) in $(readlink -f "$updates/current"), configuration $config"
if [ ${#changed[@]} -eq 0 ]; then
  say "nothing changed (already installed)"
else
  say "changed:"; printf '  %s\n' "${changed[@]}"
fi
if [ ${#todo[@]} -gt 0 ]; then
  say "left to do:"; printf '  - %s\n' "${todo[@]}"
fi
say "check: systemctl status kiosk; journalctl -u kiosk"
