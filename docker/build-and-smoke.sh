#!/usr/bin/env bash
# Builds docker/Dockerfile for real and runs the server from the image, without a Docker engine
# or a registry: the base images (debian:bookworm and debian:bookworm-slim) are made with
# mmdebstrap from this host's apt sources and apt Acquire options, the image is built and run
# with buildah (chroot isolation, vfs storage, all of it in a private temporary storage that is
# deleted at the end). The server in the image listens on loopback with the host's datasets
# mounted read-only as /data and a host folder as its state volume. Then every library the
# binaries load must be in the image, `ptq-client health` and a `submit --wait` of the bundled
# MobileNetV3 demo from the host must succeed, the image's own HEALTHCHECK command must pass
# inside it, and SIGTERM must drain and stop the server with exit 0. Prints the image's size.
#
#   docker/build-and-smoke.sh PTQ_CLIENT [--data-root DIR] [--workdir DIR]
#
# Exit 0: built and served a job; 77: skipped, saying why (buildah cannot run here); else failed.
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
source "$repo/deploy/lib/host-root.sh"
data_root=/usr/share/datasets
workdir=/var/tmp
client=""
while (($#)); do
  case "$1" in
    --data-root) data_root=${2:?}; shift 2 ;;
    --workdir) workdir=${2:?}; shift 2 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
    *) client=$1; shift ;;
  esac
done
fail() { echo "build-and-smoke: $*" >&2; exit 1; }
skip() { echo "build-and-smoke: SKIPPED: $*"; exit 77; }
[[ -x "$client" ]] || fail "usage: $0 PTQ_CLIENT (the host's ptq-client binary)"
client=$(realpath "$client")
[[ -d "$data_root/fashion-mnist" ]] || fail "$data_root/fashion-mnist is missing (install-deps.sh installs dataset-fashion-mnist)"
command -v buildah > /dev/null || fail "buildah is not installed (install-deps.sh installs it)"
command -v mmdebstrap > /dev/null || fail "mmdebstrap is not installed (install-deps.sh installs it)"
[[ "$(id -u)" -eq 0 ]] || skip "not root: this script builds with rootful buildah and mmdebstrap --mode=root"

mkdir -p "$workdir"
work=$(mktemp -d "$workdir/ptq-image.XXXXXX")
mkdir "$work/tmp"
export TMPDIR="$work/tmp"  # buildah's and mmdebstrap's temporary files go with the rest
bh() { buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs "$@"; }

server_pid=""
descendants() {  # descendants PID: its children, theirs, and so on
  local child
  for child in $(pgrep -P "$1"); do
    echo "$child"
    descendants "$child"
  done
}
stop_server() {  # stop_server SECONDS: SIGTERM to ptq-server itself (a signalled `buildah run`
  # ends at once with 143 instead of passing on the server's exit status), then wait for it.
  local deadline=$((SECONDS + $1)) pid
  for pid in $(descendants "$server_pid"); do
    if [[ "$(cat "/proc/$pid/comm" 2> /dev/null)" == ptq-server ]]; then kill -TERM "$pid"; fi
  done
  while kill -0 "$server_pid" 2> /dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  ! kill -0 "$server_pid" 2> /dev/null
}
cleanup() {
  local status=$? left
  set +e
  if [[ -n "$server_pid" ]] && ! stop_server 40; then
    kill -KILL $(descendants "$server_pid") "$server_pid" 2> /dev/null
  fi
  bh rm --all > /dev/null 2>&1
  left=$(awk -v w="$work/" 'index($5 "/", w) == 1 {print $5}' /proc/self/mountinfo)
  if [[ -n "$left" ]]; then
    echo "build-and-smoke: still mounted under $work, NOT deleting it:" >&2
    echo "$left" >&2
    exit 1
  fi
  rm -rf --one-file-system "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
bh info > "$work/buildah-info.txt" 2>&1 || skip "buildah cannot run here: $(tail -n 3 "$work/buildah-info.txt")"

step_started=$SECONDS
step() { echo "==> [$((SECONDS - step_started)) s] $*"; }

# --- base images, as `FROM` expects them, made from this host's apt configuration ---
# debian:bookworm-slim leaves out documentation, manuals and translations, as Debian's does.
slim_options=(
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias'
)
import_base() {  # import_base TAG MMDEBSTRAP-OPTIONS...
  local tag=$1 container
  shift
  make_host_root "$work/base.tar" --skip=output/dev "$@"
  container=$(bh from scratch)
  bh add --quiet "$container" "$work/base.tar" / > /dev/null
  bh config --cmd /bin/bash "$container"
  bh commit --quiet "$container" "docker.io/library/debian:$tag" > /dev/null
  bh rm "$container" > /dev/null
  rm "$work/base.tar"
}
step "base image debian:bookworm (mmdebstrap minbase)"
import_base bookworm
step "base image debian:bookworm-slim"
import_base bookworm-slim "${slim_options[@]}"

# --- the image, from docker/Dockerfile as it is ---
step "buildah bud -f docker/Dockerfile"
bh bud --isolation chroot --pull=never --layers=false -f "$repo/docker/Dockerfile" -t localhost/ptq-service:smoke "$repo"
size=$(bh images --format '{{.Size}}' localhost/ptq-service:smoke)
step "image localhost/ptq-service:smoke built: $size"
echo "build-and-smoke: image size $size"

# --- the server from the image, as `docker run -v state:/var/lib/ptq -v data:/data:ro` runs it ---
container=$(bh from --pull=never localhost/ptq-service:smoke)
# The host folder takes the place of the image's anonymous /var/lib/ptq volume, as a named volume
# does under `docker run`; buildah run would otherwise mount both there, in no fixed order.
bh config --volume /var/lib/ptq- "$container"
mkdir -p "$work/state"
chown 10001:10001 "$work/state"
echo "build-and-smoke: largest packages in the runtime image (KiB, as dpkg counts them):"
bh run --isolation chroot "$container" -- dpkg-query -W -f '${Installed-Size}\t${Package}\n' | sort -n | tail -n 8
missing=$(bh run --isolation chroot "$container" -- ldd /usr/local/bin/ptq-server /usr/local/bin/ptq-client | grep 'not found' || true)
[[ -z "$missing" ]] || fail "libraries the binaries load are missing from the image: $missing"
bh run --isolation chroot -v "$work/state:/var/lib/ptq" -v "$data_root:/data:ro" "$container" -- \
  ptq-server --listen 127.0.0.1:0 --insecure --ready-file /var/lib/ptq/ready --threads "$(nproc)" > "$work/server.log" 2>&1 &
server_pid=$!
server_started=$SECONDS
while [[ ! -s "$work/state/ready" ]] && ((SECONDS - server_started < 300)); do
  kill -0 "$server_pid" 2> /dev/null || { cat "$work/server.log"; fail "ptq-server in the image exited"; }
  sleep 0.2
done
[[ -s "$work/state/ready" ]] || { cat "$work/server.log"; fail "ptq-server in the image was not ready after 300 s"; }
address=$(cat "$work/state/ready")
step "ptq-server from the image serves on $address, ready $((SECONDS - server_started)) s after start"

"$client" --server "$address" health
step "the image's HEALTHCHECK command, inside the image"
bh run --isolation chroot "$container" -- ptq-client --server "$address" --timeout 3 health
step "host ptq-client submit --wait of deploy/examples/demo-mnv3.json"
(cd "$work" && "$client" --server "$address" submit --config "$repo/deploy/examples/demo-mnv3.json" --wait)
ls "$work/state/results"/*/report.json > /dev/null || fail "no report.json in the state volume"
step "a job served from the image SUCCEEDED; its result directory is on the state volume"

# SIGTERM drains and stops the server, as `docker stop` would.
stop_server 60 || fail "ptq-server did not stop within 60 s of SIGTERM"
server_status=0
wait "$server_pid" || server_status=$?
server_pid=""
((server_status == 0)) || { tail -n 20 "$work/server.log"; fail "ptq-server exited $server_status on SIGTERM"; }
grep -q 'ptq-server stopped' "$work/server.log" || { tail -n 20 "$work/server.log"; fail "ptq-server did not log its stop"; }
step "ptq-server drained and stopped on SIGTERM, exit 0"
echo "build-and-smoke: PASSED (image size $size)"
