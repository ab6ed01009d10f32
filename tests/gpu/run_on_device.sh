#!/usr/bin/env bash
# Builds and runs tests/gpu/cuda_engine_check.cc, on a random-weight torchvision
# MobileNetV3-small and on the bundled Fashion-MNIST one, on a GPU machine whose Python has a CUDA build
# of PyTorch (its LibTorch headers and libraries are used; Debian's LibTorch is CPU-only).
# Abseil comes from this repo's .gpu/ folder (Debian's headers and shared libraries, copied
# there by tests/gpu/stage_abseil.sh on the project's machine). Writes its log to $OUT when set.
set -uo pipefail
cd "$(dirname "$0")/../.."
log=${OUT:-/tmp}/cuda_engine_check.log
torch_dir=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))')
python3 - <<'PY'
import torch, torchvision
torch.manual_seed(0)
model = torchvision.models.mobilenet_v3_small(num_classes=10)
model.train()
with torch.no_grad():  # realistic BatchNorm statistics
    for _ in range(3):
        model(torch.randn(16, 3, 96, 96))
model.eval()
torch.jit.save(torch.jit.script(model), "/tmp/mobilenet_v3_small.pt")
PY
sources="graph/graph_ir graph/torchscript_import graph/executor graph/fold_batchnorm graph/se_blocks quant/quant_plan quant/histogram_math quant/activation_observer quant/quant_math quant/int8_kernel_math quant/calibrator quant/quantized_model quant/cross_layer_equalization quant/layer_sensitivity quant/accuracy_budget quant/weight_rounding metrics"
flags="-std=c++20 -O2 -fopenmp -Icore/src -Icore/include -I.gpu/include -I$torch_dir/include -I$torch_dir/include/torch/csrc/api/include"
mkdir -p /tmp/cuda_check
# One compiler per file: LibTorch's headers make each file slow, and the machine has cores.
for source in $sources; do g++ $flags -c core/src/$source.cc -o /tmp/cuda_check/$(basename $source).o & done
g++ $flags -c tests/gpu/cuda_engine_check.cc -o /tmp/cuda_check/check.o &
wait
g++ -fopenmp /tmp/cuda_check/*.o -o /tmp/cuda_engine_check -L"$torch_dir/lib" -ltorch -ltorch_cpu -ltorch_cuda \
  -lc10 -lc10_cuda -L.gpu/lib $(ls .gpu/lib | sed -n 's/^lib\(absl_.*\)\.so$/-l\1/p') \
  -Wl,-rpath,"$torch_dir/lib" -Wl,-rpath,"$PWD/.gpu/lib" 2>&1 | tee "$log"
# RUNPATH covers direct dependencies only; the Abseil libraries load each other.
for model in "/tmp/mobilenet_v3_small.pt 96" "models/fashion_mnist/mobilenet_v3_small.pt 32"; do
  echo "== $model" | tee -a "$log"
  for tf32 in 0 1; do
    PTQ_CHECK_TF32=$tf32 LD_LIBRARY_PATH="$PWD/.gpu/lib" /tmp/cuda_engine_check $model 2>&1 | tee -a "$log"
  done
done
