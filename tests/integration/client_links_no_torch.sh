#!/usr/bin/env bash
# ptq-client must stay thin: it may link gRPC and protobuf but never LibTorch or OpenCV.
set -euo pipefail
client="$1"
libraries=$(ldd "$client")
# Guard against a vacuous pass: the client does link gRPC, so ldd must show it.
if ! grep -q 'libgrpc++' <<<"$libraries"; then
  echo "FAIL: ldd shows no libgrpc++ for $client; cannot judge its dependencies" >&2
  exit 1
fi
if grep -Ei 'libtorch|libc10|libcaffe2|libopencv' <<<"$libraries"; then
  echo "FAIL: $client links LibTorch or OpenCV (above)" >&2
  exit 1
fi
echo "ptq-client links $(wc -l <<<"$libraries") libraries, none of them LibTorch or OpenCV"
