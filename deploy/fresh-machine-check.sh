#!/usr/bin/env bash
# The README on a new machine. Builds a minimal Debian 12 root with mmdebstrap (variant minbase),
# provisions it as a new machine on this network would be (this host's apt sources and apt
# Acquire options, CA certificates, npm configuration, resolver), clones a commit of this
# repository into it and runs the README's two commands there, under chroot, in a clean
# environment, each under a timeout. The commands are read from README.md's "Two commands"
# section, so the check runs what a user is told to run. Run as root on a Debian 12 host.
#
#   deploy/fresh-machine-check.sh [--commit REV] [--steps tests,demo] [--shared DIR | --no-shared]
#                                 [--cache DIR] [--workdir DIR] [--keep]
#
#   --commit REV   what to clone (default HEAD; uncommitted changes are not part of the check)
#   --steps LIST   README commands to run, in this order (default tests,demo: the test command
#                  builds everything, so the demo that follows reuses its build)
#   --shared DIR   bind-mounted read-only beside the clone as ../shared (default: ../shared
#                  beside this repository, when present); --no-shared mounts nothing
#   --cache DIR    the base root tarball (rebuilt when its inputs change or after a week) and
#                  apt's downloaded .debs (linked into each root and back), kept between runs
#                  (default /var/cache/ptq-fresh-machine)
#   --workdir DIR  where the root is made (default /var/tmp)
#   --keep         leave the root (unmounted) for inspection instead of deleting it
#
# Mounts: the root bound onto itself, then in it sysfs (read-only), a tmpfs on /dev/shm, a devpts
# of its own and ../shared (read-only); each step gets its own /proc in PID and mount namespaces
# of its own, so what a step mounts never reaches this host. A trap unmounts everything on every
# exit, and the root is deleted only when nothing under it is mounted. Exit status: that of the first failing step, 0 when all pass.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
commit=HEAD
steps=tests,demo
shared="$repo/../shared"
cache=/var/cache/ptq-fresh-machine
workdir=/var/tmp
keep=false
declare -A step_timeout=([tests]=4500 [demo]=1200)

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2; }
while (($#)); do
  case "$1" in
    --commit) commit=${2:?}; shift 2 ;;
    --steps) steps=${2:?}; shift 2 ;;
    --shared) shared=${2:?}; shift 2 ;;
    --no-shared) shared=""; shift ;;
    --cache) cache=${2:?}; shift 2 ;;
    --workdir) workdir=${2:?}; shift 2 ;;
    --keep) keep=true; shift ;;
    -h | --help) usage ;;
    *) echo "fresh-machine-check: unknown argument $1" >&2; usage ;;
  esac
done

fail() { echo "fresh-machine-check: $*" >&2; exit 1; }
[[ "$(id -u)" -eq 0 ]] || fail "must run as root (mmdebstrap --mode=root, chroot, mount)"
command -v mmdebstrap > /dev/null || fail "mmdebstrap is not installed (apt-get install mmdebstrap)"
commit=$(git -C "$repo" rev-parse --verify "$commit^{commit}") || fail "no such commit: $commit"
if [[ -n "$(git -C "$repo" status --porcelain --untracked-files=no)" ]]; then
  echo "fresh-machine-check: note: uncommitted changes in $repo are not part of the check"
fi

# The README's commands: the fenced sh blocks of its "Two commands" section, demo first.
mapfile -t readme_commands < <(awk '/^## Two commands/ {s = 1; next} /^## / {s = 0} s' "$repo/README.md" |
  awk '/^```sh/ {b = 1; next} /^```/ {b = 0} b && NF')
((${#readme_commands[@]} == 2)) ||
  fail "README.md's 'Two commands' section should hold 2 sh commands, found ${#readme_commands[@]}"
declare -A step_command=([demo]=${readme_commands[0]} [tests]=${readme_commands[1]})
IFS=, read -r -a step_list <<< "$steps"
for step in "${step_list[@]}"; do
  [[ -n "${step_command[$step]:-}" ]] || fail "unknown step '$step' (steps: tests, demo)"
done

declare -a timing_names=() timing_seconds=()
current_step="" step_started=0
begin() { current_step=$1; step_started=$SECONDS; echo "==> $1"; }
finish() {
  timing_names+=("$current_step")
  timing_seconds+=($((SECONDS - step_started)))
  echo "==> $current_step: $((SECONDS - step_started)) s"
  current_step=""
}

# --- the base root, as mmdebstrap makes it from this host's apt sources and Acquire options ---
source "$repo/deploy/lib/host-root.sh"
((${#host_apt_sources[@]})) || fail "this host has no apt sources to copy"
mkdir -p "$cache/archives"
base_key=$( (mmdebstrap --version; cat "${host_apt_sources[@]}"; for option in "${host_apt_options[@]}"; do cat "${option#--aptopt=}"; done) |
  sha256sum | cut -c1-16)
base="$cache/base-bookworm-minbase-$base_key.tar"
make_base() {
  local made
  made=$(mktemp "$cache/making.XXXXXX")
  make_host_root "$made"
  find "$cache" -maxdepth 1 -name 'base-bookworm-minbase-*.tar' -delete
  mv "$made" "$base"
}
if [[ ! -s "$base" || -n "$(find "$base" -mtime +7)" ]]; then
  begin "mmdebstrap: minbase bookworm root"
  make_base
  finish
else
  echo "==> base root: cached $base"
fi

# --- the root, its mounts, and the trap that always takes them down ---
mkdir -p "$workdir"
root=$(mktemp -d "$workdir/ptq-fresh-root.XXXXXX")
logs=$(mktemp -d "$workdir/ptq-fresh-logs.XXXXXX")
mounts=()
share_debs() {  # share_debs FROM TO: hard links where both are on one filesystem, else copies
  find "$1" -maxdepth 1 -name '*.deb' -exec cp --link --no-clobber -t "$2" {} + 2> /dev/null ||
    find "$1" -maxdepth 1 -name '*.deb' -exec cp --no-clobber -t "$2" {} +
}
mounted_under_root() {
  awk -v r="$root/" 'index($5 "/", r) == 1 {print $5}' /proc/self/mountinfo
}
cleanup() {
  local status=$? index left
  set +e
  if [[ -n "$current_step" ]]; then
    timing_names+=("$current_step (failed)")
    timing_seconds+=($((SECONDS - step_started)))
  fi
  for ((index = ${#mounts[@]} - 1; index >= 0; index--)); do
    umount --recursive "${mounts[index]}"
  done
  # The .debs this run downloaded join the cache (linking is atomic: side-by-side runs agree).
  share_debs "$root/var/cache/apt/archives" "$cache/archives"
  left=$(mounted_under_root)
  if [[ -n "$left" ]]; then
    echo "fresh-machine-check: still mounted under $root, NOT deleting it:" >&2
    echo "$left" >&2
    status=1
  elif $keep; then
    echo "fresh-machine-check: root kept at $root"
  else
    rm -rf --one-file-system "$root"
  fi
  if ((${#timing_names[@]})); then
    echo "fresh-machine-check: step times"
    for index in "${!timing_names[@]}"; do
      printf '  %6d s  %s\n' "${timing_seconds[index]}" "${timing_names[index]}"
    done
  fi
  if grep -q '% tests passed, ' "$logs/tests.log" 2> /dev/null; then
    echo "fresh-machine-check: the README test command's CTest summary, in the fresh root:"
    sed -n '/% tests passed, /,$p' "$logs/tests.log"
  fi
  rm -rf "$logs"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mount_in_root() {  # mount_in_root TARGET MOUNT-ARGS...
  local target="$root/$1"
  shift
  [[ -e "$target" ]] || mkdir -p "$target"
  mount "$@" "$target"
  mounts+=("$target")
}
bind_readonly() {  # bind_readonly SOURCE TARGET
  mount_in_root "$2" --bind "$1"
  mount -o remount,bind,ro "$root/$2"
}

provision() {
  tar -C "$root" --numeric-owner -xpf "$base"
  cp -L /etc/resolv.conf "$root/etc/resolv.conf"
  # CA certificates: the bundle now, and the local ones, which update-ca-certificates keeps
  # when install-deps.sh installs ca-certificates.
  mkdir -p "$root/etc/ssl/certs" "$root/usr/local/share/ca-certificates"
  if [[ -s /etc/ssl/certs/ca-certificates.crt ]]; then cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"; fi
  if [[ -d /usr/local/share/ca-certificates ]]; then
    cp -rL /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
  fi
  local npmrc
  for npmrc in /etc/npmrc /usr/etc/npmrc /usr/local/etc/npmrc; do
    if [[ -f "$npmrc" ]]; then install -D -m 0644 "$npmrc" "$root$npmrc"; fi
  done
  if [[ -f "$HOME/.npmrc" ]]; then install -D -m 0600 "$HOME/.npmrc" "$root/root/.npmrc"; fi
  # apt's .deb cache from earlier runs, linked in rather than mounted: checks running side by
  # side each have their own apt lock.
  share_debs "$cache/archives" "$root/var/cache/apt/archives"
  git clone --quiet --no-hardlinks "$repo" "$root/work/ptq-service"
  git -C "$root/work/ptq-service" checkout --quiet --detach "$commit"
  # The root is a mount point of its own, as a machine's / is: container tools in it (the
  # image test's buildah) remount / private and fail on a plain directory.
  mount_in_root . --bind "$root"
  mount_in_root sys -t sysfs -o ro sysfs
  mount_in_root dev/shm -t tmpfs -o mode=1777,size=4g tmpfs
  # Pseudo-terminals (the client's progress test runs it under util-linux `script`): a devpts
  # of the root's own, and its ptmx in place of the host's.
  mount_in_root dev/pts -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts
  mount_in_root dev/ptmx --bind "$root/dev/pts/ptmx"
  if [[ -n "$shared" && -d "$shared" ]]; then
    shared=$(cd "$shared" && pwd)
    bind_readonly "$shared" work/shared
    echo "shared data: $shared read-only at /work/shared"
  else
    echo "shared data: none (the tests that use ../shared will say they are skipped)"
  fi
}
begin "root at $root, commit ${commit:0:12}"
provision
finish

# run_step NAME: the README command, in the root, clean environment, under a timeout. It runs in
# PID and mount namespaces of its own (with a /proc of its own): when the step ends, whatever it
# started and left running is killed with it, and whatever it mounted is gone.
run_step() {
  local status=0
  timeout --kill-after=30 "${step_timeout[$1]}" \
    unshare --pid --fork --kill-child --mount --mount-proc="$root/proc" chroot "$root" /usr/bin/env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
    /bin/bash -c "cd /work/ptq-service && ${step_command[$1]}" < /dev/null 2>&1 | tee "$logs/$1.log" || status=$?
  ((status != 124)) || echo "fresh-machine-check: $1 ran past ${step_timeout[$1]} s" >&2
  return "$status"
}
for step in "${step_list[@]}"; do
  begin "README $step: ${step_command[$step]}"
  run_step "$step"
  finish
done
