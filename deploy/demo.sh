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
build/server/ptq-server --listen 127.0.0.1:0 --state-dir "$work/state" --data-root /usr/share/datasets \
  --ready-file "$work/ready" --threads "$(nproc)" > "$work/server.log" 2>&1 &
server=$!
stop_server() {
  kill -TERM "$server" 2> /dev/null && wait "$server" || true
  rm -rf "$work"
}
trap stop_server EXIT
for _ in $(seq 100); do
  [[ -s "$work/ready" ]] && break
  kill -0 "$server" 2> /dev/null || { cat "$work/server.log"; exit 1; }
  sleep 0.1
done
address=$(cat "$work/ready")
echo "ptq-server is serving on $address (state in $work)"
cd "$work"  # output_dir lands in the temporary folder
"$OLDPWD/build/client/ptq-client" --server "$address" submit --config "$OLDPWD/$config" --wait
