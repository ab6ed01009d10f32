#!/usr/bin/env bash
# README command 1, the demo: install what is needed, build the two binaries, start ptq-server on
# loopback with a temporary state directory, quantize the bundled Fashion-MNIST MobileNetV3 with
# `ptq-client submit --wait` (calibration on the server's copy of the training images,
# evaluation on the 10,000 test images), print fp32 vs int8 accuracy and the int8 speed-up, and
# stop the server. Needs nothing beyond Debian packages and this repository.
#
#   deploy/demo.sh [CONFIG]     (default: deploy/examples/demo-mnv3.json)
set -euo pipefail
cd "$(dirname "$0")/.."
config=${1:-deploy/examples/demo-mnv3.json}

deploy/install-deps.sh
cmake -S . -B build -G Ninja > /dev/null
cmake --build build --target ptq-server ptq-client

work=$(mktemp -d /tmp/ptq-demo.XXXXXX)
build/server/ptq-server --listen 127.0.0.1:0 --insecure --state-dir "$work/state" --data-root /usr/share/datasets \
  --ready-file "$work/ready" --threads "$(nproc)" > "$work/server.log" 2>&1 &
server=$!
stop_server() {
  kill -TERM "$server" 2> /dev/null && wait "$server" || true
  rm -rf "$work"
}
trap stop_server EXIT
# A cold start (LibTorch's libraries not yet in the page cache, a busy CI machine) has taken more
# than 10 s; a server that is alive gets minutes, one that exited is reported at once.
started=$SECONDS
until [[ -s "$work/ready" ]]; do
  kill -0 "$server" 2> /dev/null || { cat "$work/server.log"; echo "demo: ptq-server exited" >&2; exit 1; }
  if ((SECONDS - started >= 300)); then
    cat "$work/server.log"
    echo "demo: ptq-server was not ready after 300 s" >&2
    exit 1
  fi
  sleep 0.2
done
address=$(cat "$work/ready")
echo "ptq-server is serving on $address (state in $work)"
cd "$work"  # output_dir lands in the temporary folder
"$OLDPWD/build/client/ptq-client" --server "$address" submit --config "$OLDPWD/$config" --wait
