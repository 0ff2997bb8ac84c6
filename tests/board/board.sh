#!/usr/bin/env bash
# An emulated ARM64 Linux board on this machine, reached over ssh on 127.0.0.1: the test bed for checking
# artifacts on a device. An arm64 Debian userland (debootstrap, its packages unpacked here instead of an emulated
# second stage) runs under qemu-user through binfmt_misc, with a Python venv holding the aarch64 wheels of numpy
# and onnxruntime at the versions requirements/lock.txt pins, and its own sshd on a free loopback port.
#
#   board.sh up DIR     build DIR/root once (kept while the recipe below is unchanged), start sshd, and write
#                       DIR/board.env: URL=ssh://root@127.0.0.1:PORT, KEY (client key), KNOWN_HOSTS (its host key)
#   board.sh down DIR   stop sshd and unmount what `up` mounted
#
# Needs root, apt-get and a kernel with binfmt_misc; exits 4 with the reason when the machine cannot provide them,
# so the tests that need the board skip and say why.
set -euo pipefail

RELEASE=bookworm
PACKAGES=python3,python3-venv,ca-certificates,openssh-server
here=$(cd "$(dirname "$0")" && pwd)
lock="$here/../../requirements/lock.txt"

die() { echo "board: $*" >&2; exit "${2:-1}"; }
pin() { grep -Eo "^$1==[^ ]+" "$lock" || die "$1 is not in $lock"; }

# The recipe: anything that changes the userland changes this key, and the board is rebuilt.
recipe() { printf '%s\n' "$RELEASE" "$PACKAGES" "$(pin numpy)" "$(pin onnxruntime)" "$(sha256sum "$0" | cut -c1-16)"; }

need_machine() {
  [ "$(id -u)" = 0 ] || die "needs root (debootstrap, chroot, mounts)" 4
  local missing=()
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  [ -e /usr/libexec/qemu-binfmt/aarch64-binfmt-P ] || [ -e /usr/bin/qemu-aarch64-static ] || missing+=(qemu-user-static)
  command -v update-binfmts >/dev/null || missing+=(binfmt-support)
  command -v ssh >/dev/null || missing+=(openssh-client)
  if [ ${#missing[@]} -gt 0 ]; then
    command -v apt-get >/dev/null || die "needs ${missing[*]} and there is no apt-get" 4
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >/dev/null \
      || die "apt-get install ${missing[*]} failed" 4
  fi
  [ -e /proc/sys/fs/binfmt_misc/status ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc 2>/dev/null \
    || die "this kernel offers no binfmt_misc, so arm64 programs cannot run here" 4
  update-binfmts --enable qemu-aarch64 2>/dev/null || true
  [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || die "qemu-aarch64 is not registered with binfmt_misc" 4
}

# The Debian mirror this machine's apt uses (never a host written here).
mirror() {
  local uri
  uri=$(grep -h -m1 -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' | head -1)
  [ -n "$uri" ] || uri=$(grep -h -m1 -E '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}')
  [ -n "$uri" ] || die "no Debian mirror found in /etc/apt" 4
  echo "$uri"
}

mounted() { grep -q " $1 " /proc/mounts; }

# Remove the userland only when nothing is mounted under it: rm through a bind mount of /dev would delete this
# machine's device nodes. --one-file-system is the second guard.
remove_root() {
  local root=$1/root
  unmount_all "$1"
  if grep -q " $root/" /proc/mounts; then die "refusing to remove $root: something is still mounted under it"; fi
  rm -rf --one-file-system "$root" "$1/recipe" "$1/client_key" "$1/client_key.pub" "$1/known_hosts"
}

build() {
  local dir=$1 root=$1/root
  remove_root "$dir"
  mkdir -p "$root"
  debootstrap --arch=arm64 --foreign --variant=minbase --include="$PACKAGES" "$RELEASE" "$root" "$(mirror)" \
    >"$dir/build.log" 2>&1 || die "debootstrap could not fetch or unpack the arm64 userland; see $dir/build.log" 4
  # the second stage would run every maintainer script under emulation (about 15 minutes); unpacking is enough
  for deb in "$root"/var/cache/apt/archives/*.deb; do dpkg-deb -x "$deb" "$root"; done
  rm -f "$root"/var/cache/apt/archives/*.deb
  cp "$root/usr/share/base-passwd/passwd.master" "$root/etc/passwd"
  cp "$root/usr/share/base-passwd/group.master" "$root/etc/group"
  echo 'sshd:x:100:65534::/run/sshd:/usr/sbin/nologin' >>"$root/etc/passwd"  # what openssh-server's script adds
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
  mount_all "$dir"
  in_board "$dir" /usr/bin/python3 -m venv /opt/agent >>"$dir/build.log" 2>&1 || die "venv failed; see $dir/build.log"
  in_board "$dir" /opt/agent/bin/pip install --quiet --disable-pip-version-check "$(pin numpy)" "$(pin onnxruntime)" \
    >>"$dir/build.log" 2>&1 || die "pip could not install the board's wheels; see $dir/build.log" 4
  unmount_all "$dir"
  # host and client keys, made with this machine's ssh-keygen (fast), used by the board's sshd (emulated)
  ssh-keygen -q -t ed25519 -N '' -f "$root/etc/ssh/ssh_host_ed25519_key" -C board
  ssh-keygen -q -t ed25519 -N '' -f "$dir/client_key" -C exportkit-tests
  install -d -m 700 "$root/root/.ssh"
  install -m 600 "$dir/client_key.pub" "$root/root/.ssh/authorized_keys"
  cat >"$root/etc/ssh/sshd_config" <<'EOF'
ListenAddress 127.0.0.1
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
PidFile /run/sshd.pid
EOF
  mkdir -p "$root/run/sshd"
  recipe >"$dir/recipe"
}

# Run a command inside the userland with a clean environment (this machine's pip settings stay out).
in_board() {
  local dir=$1
  shift
  env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 chroot "$dir/root" "$@"
}

# /proc and /sys as an arm64 program expects them: onnxruntime picks kernels from /sys and crashes at import
# without an aarch64 /proc/cpuinfo (the emulator passes the x86 one through). /sys is read-only, and /dev is a
# tmpfs of its own with the few nodes programs open, never this machine's /dev.
mount_all() {
  local root=$1/root
  mkdir -p "$root/proc" "$root/sys" "$root/dev"
  mounted "$root/proc" || mount -t proc proc "$root/proc"
  mounted "$root/proc/cpuinfo" || mount --bind "$here/cpuinfo" "$root/proc/cpuinfo"
  if ! mounted "$root/sys"; then
    mount --bind /sys "$root/sys"
    mount -o remount,bind,ro "$root/sys"
  fi
  if ! mounted "$root/dev"; then
    mount -t tmpfs -o size=1m,mode=755 board-dev "$root/dev"
    mknod -m 666 "$root/dev/null" c 1 3
    mknod -m 666 "$root/dev/zero" c 1 5
    mknod -m 666 "$root/dev/random" c 1 8
    mknod -m 666 "$root/dev/urandom" c 1 9
  fi
}

unmount_all() {
  local root=$1/root
  for m in proc/cpuinfo proc sys dev; do
    if mounted "$root/$m"; then umount "$root/$m" 2>/dev/null || umount -l "$root/$m"; fi
  done
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

up() {
  local dir=$1
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  need_machine
  if [ ! -f "$dir/recipe" ] || [ "$(cat "$dir/recipe")" != "$(recipe)" ]; then
    echo "board: building an arm64 userland in $dir (about 3 minutes)" >&2
    build "$dir"
  fi
  down "$dir"
  mount_all "$dir"
  local port
  port=$(free_port)
  in_board "$dir" /usr/sbin/sshd -p "$port" -E /var/log/sshd.log \
    || die "the board's sshd did not start: $(tail -1 "$dir/root/var/log/sshd.log")"
  echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$dir/root/etc/ssh/ssh_host_ed25519_key.pub")" >"$dir/known_hosts"
  local url="ssh://root@127.0.0.1:$port"
  for _ in $(seq 1 60); do  # the emulated sshd takes a few seconds to answer
    if ssh -p "$port" -i "$dir/client_key" -o UserKnownHostsFile="$dir/known_hosts" -o StrictHostKeyChecking=yes \
      -o BatchMode=yes -o ConnectTimeout=5 root@127.0.0.1 true 2>/dev/null; then
      printf 'URL=%s\nKEY=%s\nKNOWN_HOSTS=%s\n' "$url" "$dir/client_key" "$dir/known_hosts" >"$dir/board.env"
      echo "$url"
      return 0
    fi
    sleep 1
  done
  die "the board's sshd did not answer on 127.0.0.1:$port; see $dir/root/var/log/sshd.log"
}

down() {
  local dir=$1
  local pid
  pid=$(cat "$dir/root/run/sshd.pid" 2>/dev/null || true)
  # only the board's own sshd: after a reboot the number may belong to another process
  if [ -n "$pid" ] && grep -q sshd "/proc/$pid/cmdline" 2>/dev/null; then kill "$pid" 2>/dev/null || true; fi
  rm -f "$dir/root/run/sshd.pid"
  unmount_all "$dir"
  rm -f "$dir/board.env"
}

case "${1:-}" in
  up) up "${2:?board.sh up DIR}" ;;
  down) down "${2:?board.sh down DIR}" ;;
  *) die "usage: board.sh up DIR | board.sh down DIR" 2 ;;
esac
