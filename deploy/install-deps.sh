#!/usr/bin/env bash
# Installs every Debian 12 package that ptq-service needs to build, test, run its demo and
# benchmarks. Idempotent: packages already present are left alone. Run as root (or via sudo).
# README, .ci/run and docker/Dockerfile all call this one script, so a fresh machine and CI
# get exactly the same set.
#
#   deploy/install-deps.sh [--build-only]
#
# --build-only: just what compiling ptq-server and ptq-client needs (docker/Dockerfile's build
# stage), without the tests' Python, data, Node.js and image tools.
set -euo pipefail
build_only=false
case "${1:-}" in
  "") ;;
  --build-only) build_only=true ;;
  *) echo "usage: $0 [--build-only]" >&2; exit 2 ;;
esac

# Build toolchain and the libraries the C++ code links against.
build_packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  libtorch-dev
  # onednn, under LibTorch's CPU kernels: its C API caps the instruction set (core/src/devices.cc).
  # Its dnnl-config.cmake calls find_package(OpenCL), whose headers and library are only a
  # Recommends of libdnnl-dev, so they are named here.
  libdnnl-dev ocl-icd-opencl-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libopencv-dev libabsl-dev libspdlog-dev libfmt-dev
  nlohmann-json3-dev libcli11-dev libsqlite3-dev libssl-dev
  # The PostgreSQL job store (--store postgresql://...).
  libpqxx-dev
  # Prometheus metrics (--metrics-listen): prometheus-cpp's core (registry, text format).
  prometheus-cpp-dev
  libonnx-dev
  googletest libgtest-dev libgmock-dev
  # Debian's default BLAS is the slow reference implementation; LibTorch picks OpenBLAS
  # through the alternatives system once it is installed.
  libopenblas0 libopenblas0-pthread
)

# Data and Python side: the bundled models' training script, reference checks in tests
# (OpenCV, torch, onnx), and the side-by-side benchmarks against PyTorch's own PTQ.
runtime_and_test_packages=(
  dataset-fashion-mnist
  python3 python3-torch python3-torchvision python3-onnx python3-opencv python3-numpy
  procps
  bsdutils
  # The TLS tests make their certificates with the openssl command line.
  openssl
  # The job store tests start a PostgreSQL server of their own (initdb, pg_ctl).
  postgresql
  # deploy_checks: YAML lint (and `kubectl kustomize deploy/k8s`, below).
  yamllint python3-yaml
  # The image test (docker/build-and-smoke.sh): base images made with mmdebstrap, the
  # Dockerfile built and run with buildah.
  mmdebstrap buildah
  # fuzz/run.sh (CTest fuzz_smoke): clang with libFuzzer and the sanitizer runtimes.
  clang-14 libclang-rt-14-dev
)

if [[ "$(id -u)" -ne 0 ]]; then
  echo "install-deps.sh: must run as root (try: sudo $0)" >&2
  exit 1
fi

wanted=("${build_packages[@]}")
if ! $build_only; then
  wanted+=("${runtime_and_test_packages[@]}")
  # Node.js runs ONNX Runtime in the tests; machines that already have a node keep theirs.
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    wanted+=(nodejs npm)
  fi
  # kubectl renders deploy/k8s in deploy_checks. A machine that has one keeps it: another
  # vendor's kubectl package owns the same file, and Debian's would fail to unpack over it.
  if ! command -v kubectl >/dev/null 2>&1; then
    wanted+=(kubernetes-client)
  fi
fi

missing=()
for pkg in "${wanted[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps.sh: all ${#wanted[@]} packages already installed"
else
  echo "install-deps.sh: installing ${#missing[@]} packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ONNX Runtime (CPU) from the npm registry, for the tests that run exported ONNX files. Its
# install script would download more and fails offline; the package carries the CPU binaries.
ort_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/ort"
if ! $build_only && [[ -f "$ort_dir/package.json" ]]; then
  npm install --prefix "$ort_dir" --ignore-scripts --no-audit --no-fund --loglevel=error
fi
