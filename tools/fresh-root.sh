#!/usr/bin/env bash
# fresh-root.sh [--keep] CACHE_DIR COMMAND...
#
# Runs COMMAND as a new user would on a freshly installed Debian 12 machine: in a minimal root made
# with debootstrap (none of this machine's installed packages), holding a fresh clone of this
# repository's committed HEAD at /srv/project, with the CUDA toolkit (when this machine has one)
# bind-mounted read-only at /usr/local/cuda as a GPU server would have it, and the shared folder
# beside the project (../shared: the datasets) mounted read-only at /srv/shared so that
# ../shared/datasets resolves as it does in CI. COMMAND runs as root in /srv/project with an empty
# environment apart from PATH, HOME, LANG and the TESSERA_* variables set here.
#
# .ci/run runs the README's test command through this, so CI can never pass because this machine
# happens to hold a package that a fresh one lacks.
#
# CACHE_DIR/base keeps the debootstrapped base system between calls (made once, about 2 minutes);
# every call starts from a fresh copy of it (CACHE_DIR/root), so nothing installed by an earlier
# call survives. Downloaded .deb files are kept in CACHE_DIR/apt-archives to save the downloads,
# not the installs. --keep reuses the previous call's root instead (faster, not fresh: for
# debugging only). Needs root (debootstrap, mount, chroot).
set -euo pipefail
keep=0
if [[ ${1:-} == --keep ]]; then
  keep=1
  shift
fi
if [[ $# -lt 2 ]]; then
  sed -n '2,19p' "$0" >&2
  exit 2
fi
project=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1"
cache=$(cd "$1" && pwd)
shift
[[ $(id -u) -eq 0 ]] || { echo "fresh-root: needs root (debootstrap, mount, chroot)" >&2; exit 2; }
base=$cache/base
root=$cache/root
debs=$cache/apt-archives
shared=$(cd "$project/.." && pwd)/shared

if ! command -v debootstrap >/dev/null; then
  echo "fresh-root: installing debootstrap on this machine" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

# The Debian mirror this machine's apt uses (deb822 sources, or the classic list).
mirror=$(grep -hE '^\s*URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2; exit}')
if [[ -z $mirror ]]; then
  mirror=$(grep -hE '^\s*deb\s' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
    awk '{for (i = 2; i <= NF; ++i) if ($i ~ /^[a-z]+:\/\//) {print $i; exit}}')
fi
[[ -n $mirror ]] || { echo "fresh-root: no Debian mirror found under /etc/apt" >&2; exit 1; }

mounts=(proc dev srv/shared usr/local/cuda-ro var/cache/apt/archives)
unmount_all() {
  local m
  for m in "${mounts[@]}"; do
    if mountpoint -q "$root/$m" 2>/dev/null; then umount -R "$root/$m" 2>/dev/null || umount -lR "$root/$m" || true; fi
  done
}
trap unmount_all EXIT
unmount_all

if [[ ! -x $base/bin/bash || ! -f $base/.tessera-base-complete ]]; then
  rm -rf "$base"
  mkdir -p "$base"
  echo "fresh-root: debootstrap bookworm (minbase) from $mirror into $base" >&2
  if ! debootstrap --variant=minbase bookworm "$base" "$mirror" >"$cache/debootstrap.log" 2>&1; then
    rm -rf "$base"
    echo "fresh-root: debootstrap failed; see $cache/debootstrap.log" >&2
    exit 1
  fi
  touch "$base/.tessera-base-complete"
fi
# Never delete through a mount that is still there (/dev of this machine is bind-mounted inside).
if awk -v r="$root/" 'index($2, r) == 1 {found = 1} END {exit !found}' /proc/mounts; then
  echo "fresh-root: something is still mounted under $root; not touching it" >&2
  exit 1
fi
if [[ $keep == 0 || ! -x $root/bin/bash ]]; then
  rm -rf "$root"
  cp -a "$base" "$root"
fi

# The same package sources and apt settings as this machine (its mirror and proxy), except the
# rule that deletes downloaded packages, so the kept archive folder saves later downloads.
rm -f "$root/etc/apt/sources.list"
cp -r /etc/apt/sources.list.d "$root/etc/apt/" 2>/dev/null || true
cp -r /etc/apt/apt.conf.d "$root/etc/apt/" 2>/dev/null || true
rm -f "$root/etc/apt/apt.conf.d/docker-clean"
echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' >"$root/etc/apt/apt.conf.d/99tessera-keep-debs"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
# And the same trust in the network's certificate authorities: a machine whose HTTPS goes
# through a proxy with its own CA (added under /usr/local/share/ca-certificates) and pip told to
# use the system bundle (/etc/pip.conf). The root's ca-certificates package, installed by
# tools/setup.sh, builds its bundle with them; nothing else of this machine is copied.
mkdir -p "$root/usr/local/share/ca-certificates"
cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
cp /etc/pip.conf "$root/etc/pip.conf" 2>/dev/null || true
if [[ -x $root/usr/sbin/update-ca-certificates ]]; then
  chroot "$root" /usr/sbin/update-ca-certificates >/dev/null 2>&1 || true
fi

mkdir -p "$root/proc" "$root/dev" "$root/srv/shared" "$root/usr/local/cuda-ro" "$debs/partial" \
  "$root/var/cache/apt/archives"
mount -t proc proc "$root/proc"
mount --rbind /dev "$root/dev"
mount --make-rslave "$root/dev"
mount --bind "$debs" "$root/var/cache/apt/archives"
if [[ -d $shared ]]; then
  mount --bind -o ro "$shared" "$root/srv/shared"
else
  echo "fresh-root: no $shared beside the project; the datasets will be missing" >&2
fi
if [[ -d /usr/local/cuda ]]; then
  mount --bind -o ro "$(readlink -f /usr/local/cuda)" "$root/usr/local/cuda-ro"
  ln -sfn /usr/local/cuda-ro "$root/usr/local/cuda"
fi

rm -rf "$root/srv/project"
git clone -q "$project" "$root/srv/project"
echo "fresh-root: $(git -C "$project" rev-parse --short HEAD) cloned to /srv/project; running: $*" >&2
env_vars=(HOME=/root PATH=/usr/local/cuda/bin:/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb LANG=C.UTF-8)
while IFS='=' read -r name value; do
  [[ $name == TESSERA_* ]] && env_vars+=("$name=$value")
done < <(env)
set +e
chroot "$root" /usr/bin/env -i "${env_vars[@]}" bash -c 'cd /srv/project && "$@"' fresh-root "$@"
rc=$?
set -e
echo "fresh-root: exit code $rc" >&2
exit $rc
