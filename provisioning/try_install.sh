#!/usr/bin/env bash
# Tries provisioning/install.sh in a Debian root file system (chroot): twice, comparing what it installed.
# The single-quoted scripts run in the chroot's bash, which expands them:
# shellcheck disable=SC2016
set -Eeuo pipefail

usage() {
  cat <<'EOF'
usage: sudo provisioning/try_install.sh [--pi] [--logs DIR] ROOTFS [INSTALL.SH OPTIONS...]

Clones this repository's HEAD into ROOTFS (as /home/pi/kiosk, owned by uid 1000 like a technician's
clone), runs install.sh there (with --station-id DE-TRY-0001 unless the options name one), records a
manifest of what it installed (path, type, mode, owner, mtime, sha256), runs it a second time and
compares, then checks the result. Logs and manifests go to DIR (default: ROOTFS.logs). Exit 1 if a
check failed.

  --pi    pretend to be a Raspberry Pi 4: /proc/device-tree/model says so (in a stand-in /proc), and
          /boot/firmware gets Raspberry Pi OS's config.txt and cmdline.txt if it has none

ROOTFS is changed for good (that is the point): try it on a copy, e.g.
  mmdebstrap --variant=minbase --include=python3,ca-certificates,git trixie /tmp/inst13
The chroot reaches the package registries through the host's network; CA certificates the host
added (/usr/local/share/ca-certificates) are added to ROOTFS too, for hosts behind a TLS proxy.
No systemd runs in a chroot: install.sh enables units but starts none.
EOF
}

pi=no logs=""
while [ $# -gt 0 ]; do
  case "$1" in
    --pi) pi=yes; shift ;;
    --logs) logs=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) break ;;
  esac
done
[ $# -ge 1 ] || { usage >&2; exit 2; }
root=$(cd "$1" && pwd -P); shift
options=("$@")
[[ " ${options[*]} " == *" --station-id "* ]] || options=(--station-id DE-TRY-0001 "${options[@]}")
station_id=DE-TRY-0001
for ((i = 0; i < ${#options[@]} - 1; i++)); do [ "${options[i]}" != --station-id ] || station_id=${options[i + 1]}; done
[ "$(id -u)" -eq 0 ] || { echo "try_install.sh: run it as root (chroot, mounts)" >&2; exit 2; }
if [ ! -f "$root/etc/os-release" ] || [ ! -x "$root/bin/bash" ]; then
  echo "try_install.sh: $root is no Debian root file system" >&2; exit 2
fi
repo=$(cd "$(dirname "$0")/.." && pwd -P)
logs=${logs:-$root.logs}
mkdir -p "$logs"

# ---- mounts (always undone) ----
mounted=()
mount_in() { mount "$@"; mounted=("${@: -1}" "${mounted[@]}"); }
cleanup() {
  local target
  for target in "${mounted[@]}"; do umount "$target" || umount -l "$target" || true; done
}
trap cleanup EXIT
if [ $pi = yes ]; then
  # The kernel's /proc cannot take a new file, so the chroot gets a stand-in: a tmpfs whose entries point
  # into the real proc mounted beneath it, plus device-tree/model.
  mount_in -t tmpfs -o mode=0555 tmpfs "$root/proc"
  mkdir "$root/proc/.host" "$root/proc/device-tree"
  mount_in -t proc proc "$root/proc/.host"
  for entry in /proc/*; do
    name=${entry#/proc/}
    [[ $name =~ ^[0-9]+$ ]] || ln -s ".host/$name" "$root/proc/$name"
  done
  printf 'Raspberry Pi 4 Model B Rev 1.5\0' > "$root/proc/device-tree/model"
else
  mount_in -t proc proc "$root/proc"
fi
mount_in -t sysfs sys "$root/sys"
mount_in --bind /dev "$root/dev"
mount_in -t devpts -o newinstance,ptmxmode=0666 devpts "$root/dev/pts"
mount_in -t tmpfs tmpfs "$root/dev/shm"
mount_in -t tmpfs tmpfs "$root/run"

in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  HOME=/root LANG=C.UTF-8 PIP_CERT=/etc/ssl/certs/ca-certificates.crt "$@"; }

# ---- the chroot as a technician finds it ----
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/"
  in_root update-ca-certificates >/dev/null 2>&1 || true
fi
if [ $pi = yes ] && [ ! -f "$root/boot/firmware/config.txt" ]; then
  mkdir -p "$root/boot/firmware"
  cat > "$root/boot/firmware/config.txt" <<'EOF'
# Raspberry Pi OS 12's config.txt as flashed (comments shortened)
#dtparam=i2c_arm=on
#dtparam=spi=on

# Enable audio (loads snd_bcm2835)
dtparam=audio=on

# Automatically load overlays for detected cameras and DSI displays
camera_auto_detect=1
display_auto_detect=1

# Automatically load initramfs files, if found
auto_initramfs=1

# Enable DRM VC4 V3D driver
dtoverlay=vc4-kms-v3d
max_framebuffers=2

# Don't have the firmware create an initial video= setting in cmdline.txt.
disable_fw_kms_setup=1

# Run in 64-bit mode
arm_64bit=1

# Disable compensation for displays with overscan
disable_overscan=1

# Run as fast as firmware / board allows
arm_boost=1

[cm4]
otg_mode=1

[all]
EOF
  echo "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait" \
    "cfg80211.ieee80211_regdom=DE" > "$root/boot/firmware/cmdline.txt"
fi
rm -rf "$root/home/pi/kiosk"
mkdir -p "$root/home/pi"
git clone -q "$repo" "$root/home/pi/kiosk"
chown -R 1000:1000 "$root/home/pi"
# shellcheck source=/dev/null
echo "== try_install: $(. "$root/etc/os-release"; echo "$PRETTY_NAME"), pi: $pi," \
  "HEAD $(git -C "$repo" -c safe.directory='*' log -1 --format='%h %s'), options: ${options[*]}"

# ---- what install.sh installed: one line per path ----
watched=(/etc/kiosk /opt/kiosk /var/lib/kiosk /etc/systemd/system /etc/udev/rules.d /etc/systemd/journald.conf.d
  /usr/local/bin)
[ $pi = no ] || watched+=(/boot/firmware)
manifest() {  # type mode owner path (-> target | mtime), then each file's sha256, the accounts, the packages
  in_root /bin/bash -c '
    find "$@" \( -type l -printf "l %m %u:%g %p -> %l\n" \) -o \( -type f -printf "f %m %u:%g %p %T@\n" \) \
      -o -printf "%y %m %u:%g %p\n" | sort -k4
    find "$@" -type f -exec sha256sum {} + | sort -k2
    getent passwd kiosk
    getent group kiosk dialout gpio video input render audio
    dpkg-query -W -f "\${Package} \${Version}\n" | sed "s/^/package /"' manifest "${watched[@]}"
}

run_install() {  # run_install N: install.sh's Nth run, timed, logged
  local started rc=0
  started=$(date +%s.%N)
  in_root /home/pi/kiosk/provisioning/install.sh "${options[@]}" > "$logs/run$1.log" 2>&1 || rc=$?
  printf 'run %s: exit %s in %.1f s (log %s)\n' "$1" "$rc" "$(awk "BEGIN {print $(date +%s.%N) - $started}")" \
    "$logs/run$1.log"
  return $rc
}
failures=0
check() {  # check DESCRIPTION COMMAND...: PASS or FAIL
  if "${@:2}" >> "$logs/checks.log" 2>&1; then echo "PASS $1"; else echo "FAIL $1"; failures=$((failures + 1)); fi
}
: > "$logs/checks.log"

run_install 1 || { tail -20 "$logs/run1.log"; exit 1; }
manifest > "$logs/manifest-1.txt"
run_install 2 || { tail -20 "$logs/run2.log"; exit 1; }
manifest > "$logs/manifest-2.txt"
echo "manifest: $(grep -c '^[fdl] ' "$logs/manifest-1.txt") paths ($(grep -c '^f ' "$logs/manifest-1.txt") files)," \
  "$(du -sh "$root/opt/kiosk" | cut -f1) in /opt/kiosk; $(grep -c '^package ' "$logs/manifest-1.txt") Debian packages"
if diff -u "$logs/manifest-1.txt" "$logs/manifest-2.txt" > "$logs/manifest.diff"; then
  echo "PASS the second run changed nothing (manifest identical)"
else
  echo "FAIL the second run changed: $(grep -c '^[-+][^-+]' "$logs/manifest.diff") lines ($logs/manifest.diff)"
  failures=$((failures + 1))
fi
check "the second run said so" grep -q "^nothing changed" "$logs/run2.log"

# A third run with another station id is refused and changes nothing.
if in_root /home/pi/kiosk/provisioning/install.sh --station-id DE-OTHER-0001 > "$logs/run3-other-id.log" 2>&1; then
  echo "FAIL another --station-id was accepted"; failures=$((failures + 1))
else
  check "another --station-id is refused with a message" grep -q "is for station $station_id, not DE-OTHER-0001" \
    "$logs/run3-other-id.log"
  manifest > "$logs/manifest-3.txt"
  check "... and changes nothing" cmp "$logs/manifest-1.txt" "$logs/manifest-3.txt"
fi

# ---- checks ----
k() { in_root /bin/bash -c "$1"; }
check "kiosk check-config (as kiosk)" k 'cd / && runuser -u kiosk -- /var/lib/kiosk/updates/current/.venv/bin/kiosk check-config /etc/kiosk/kiosk.toml'
check "kiosk version (as kiosk)" k 'cd / && runuser -u kiosk -- /var/lib/kiosk/updates/current/.venv/bin/kiosk version'
check "current and stable name the installed release, linked in" k 'u=/var/lib/kiosk/updates && [ -f $u/current/release.json ] &&
  [ "$(readlink $u/current)" = "$(readlink $u/stable)" ] && [ "$(readlink -f $u/current)" = "$(ls -d /opt/kiosk/releases/*)" ] &&
  kiosk update --status | grep -q "current release: "'
check "the guard runs as kiosk from the stable release" k 'cd / && runuser -u kiosk -- /var/lib/kiosk/updates/stable/.venv/bin/python -m kiosk.releases.guard start --root /var/lib/kiosk/updates'
check "sudo kiosk runs the current release as kiosk, never as root" k '[ "$(stat -c %U:%a /usr/local/bin/kiosk)" = root:755 ] &&
  kiosk update --status --json | grep -q "\"station_running\": false"'
check "kiosk on PATH, and kiosk doctor answers (the station does not run here: exit 1)" k \
  'cd / && [ "$(command -v kiosk)" = /usr/local/bin/kiosk ] && { kiosk doctor > /tmp/doctor.txt; [ $? = 1 ]; } &&
   grep -q "^fail  service        the station does not run" /tmp/doctor.txt'
if in_root test -x /usr/bin/systemd-analyze; then
  check "systemd-analyze verify kiosk.service" k 'out=$(systemd-analyze verify /etc/systemd/system/kiosk.service 2>&1); echo "$out"; [ -z "$out" ]'
  check "systemd-analyze security: 2.5 or below" k 'systemd-analyze security --offline=yes /etc/systemd/system/kiosk.service 2>&1 |
    sed -n "s/.*Overall exposure level for kiosk.service: \([0-9.]*\).*/\1/p" | awk "{exit !(\$1 <= 2.5)}"'
fi
check "user kiosk: system user, home /var/lib/kiosk, no login shell" \
  k 'IFS=: read -r _ _ uid _ _ home shell < <(getent passwd kiosk); [ "$uid" -lt 1000 ] && [ "$home" = /var/lib/kiosk ] && [ "$shell" = /usr/sbin/nologin ]'
check "groups of the unit exist: dialout gpio video input render audio" k 'for g in dialout gpio video input render audio; do getent group $g; done'
check "the unit is enabled (multi-user.target.wants)" \
  k '[ "$(readlink /etc/systemd/system/multi-user.target.wants/kiosk.service)" = /etc/systemd/system/kiosk.service ]'
check "the unit is the repository's" cmp "$repo/systemd/kiosk.service" "$root/etc/systemd/system/kiosk.service"
check "default target multi-user.target" k '[ "$(systemctl get-default)" = multi-user.target ]'
check "time sync enabled" k 'systemctl -q is-enabled systemd-timesyncd.service || systemctl -q is-enabled chrony.service'
check "journald drop-in: persistent" grep -qx "Storage=persistent" "$root/etc/systemd/journald.conf.d/kiosk.conf"
check "/etc/kiosk/kiosk.toml 0640 root:kiosk, station id $station_id" \
  k "[ \"\$(stat -c '%a %U:%G' /etc/kiosk/kiosk.toml)\" = '640 root:kiosk' ] && grep -qx 'id = \"$station_id\"' /etc/kiosk/kiosk.toml"
check "terminal.port /dev/kiosk-terminal, storage under /var/lib/kiosk" k 'grep -qx "port = \"/dev/kiosk-terminal\"" /etc/kiosk/kiosk.toml &&
  grep -qx "database = \"/var/lib/kiosk/kiosk.db\"" /etc/kiosk/kiosk.toml'
check "udev rule for /dev/kiosk-terminal" grep -q 'SYMLINK+="kiosk-terminal"' "$root/etc/udev/rules.d/99-kiosk-terminal.rules"
if in_root udevadm verify --help >/dev/null 2>&1; then  # systemd 254 and later (Debian 13)
  check "udevadm verify: the rules" k 'udevadm verify /etc/udev/rules.d/*kiosk*.rules'
fi
check "/opt/kiosk is root's, and kiosk cannot write it" k '[ "$(find /opt/kiosk ! -user root | wc -l)" = 0 ] && ! runuser -u kiosk -- test -w /opt/kiosk &&
  ! runuser -u kiosk -- test -w /opt/kiosk/releases && ! runuser -u kiosk -- test -w "$(readlink -f /var/lib/kiosk/updates/current)/.venv/bin"'
check "/var/lib/kiosk/updates is kiosk's" k '[ "$(find /var/lib/kiosk/updates ! -user kiosk | wc -l)" = 0 ]'
check "/var/lib/kiosk is kiosk's" k '[ "$(stat -c %U /var/lib/kiosk)" = kiosk ]'
check "translations compiled" k 'ls /var/lib/kiosk/updates/current/screens/locale/*/LC_MESSAGES/kiosk.mo'
case " ${options[*]} " in
  *" --broker-credentials certificate "*)
    check "station.key: EC P-256, 0640 root:kiosk" k '[ "$(stat -c "%a %U:%G" /etc/kiosk/tls/station.key)" = "640 root:kiosk" ] &&
      openssl pkey -in /etc/kiosk/tls/station.key -noout -text | grep -q "NIST CURVE: P-256"'
    check "station.csr: subject /CN=$station_id, signed by station.key" k "openssl req -in /etc/kiosk/tls/station.csr -noout -verify &&
      [ \"\$(openssl req -in /etc/kiosk/tls/station.csr -noout -subject -nameopt compat)\" = 'subject=/CN=$station_id' ] &&
      [ \"\$(openssl req -in /etc/kiosk/tls/station.csr -noout -pubkey)\" = \"\$(openssl pkey -in /etc/kiosk/tls/station.key -pubout)\" ]"
    check "[mqtt] uses the certificate" k 'grep -qx "cert_file = \"/etc/kiosk/tls/station.crt\"" /etc/kiosk/kiosk.toml &&
      grep -qx "key_file = \"/etc/kiosk/tls/station.key\"" /etc/kiosk/kiosk.toml'
    check "kiosk can read the key" k 'runuser -u kiosk -- test -r /etc/kiosk/tls/station.key' ;;
  *" --broker-credentials password "*)
    check "mqtt.password: 32 url-safe characters, no newline, 0640 root:kiosk" k '[ "$(stat -c "%a %U:%G %s" /etc/kiosk/mqtt.password)" = "640 root:kiosk 32" ] &&
      grep -Eqx "[A-Za-z0-9_-]{32}" /etc/kiosk/mqtt.password && [ "$(tail -c1 /etc/kiosk/mqtt.password | od -An -c | tr -d " ")" != "\n" ]'
    check "[mqtt] uses the password" k "grep -qx 'username = \"$station_id\"' /etc/kiosk/kiosk.toml &&
      grep -qx 'password_file = \"/etc/kiosk/mqtt.password\"' /etc/kiosk/kiosk.toml"
    check "kiosk can read the password" k 'runuser -u kiosk -- test -r /etc/kiosk/mqtt.password' ;;
esac
if [ $pi = yes ]; then
  check "lgpio and gpiozero import as kiosk (in a writable working directory, as the unit's /run/kiosk)" \
    k 'cd /var/lib/kiosk && runuser -u kiosk -- /var/lib/kiosk/updates/current/.venv/bin/python -c "import lgpio, gpiozero; from gpiozero.pins.lgpio import LGPIOFactory" &&
       rm -f /var/lib/kiosk/.lgd-nfy*'
  check "cmdline.txt: one line with consoleblank=0 vt.global_cursor_default=0" \
    k '[ "$(wc -l < /boot/firmware/cmdline.txt)" = 1 ] && grep -Eq "(^| )consoleblank=0( |$)" /boot/firmware/cmdline.txt &&
       grep -Eq "(^| )vt.global_cursor_default=0( |$)" /boot/firmware/cmdline.txt'
  check "config.txt: the KMS overlay" grep -Eq '^dtoverlay=vc4-kms-v3d' "$root/boot/firmware/config.txt"
fi
sed -n '/^== station/,$p' "$logs/run1.log" | sed 's/^/run 1 | /'
echo "== $failures failed (checks' output: $logs/checks.log)"
[ $failures -eq 0 ]
