#!/usr/bin/python3
"""PyTorch's own PTQ (torch.ao FX, onednn qconfig) of a TorchScript model's eager twin, timed.

Usage: fx_int8_speed.py {mobilenet_v3_large|mobilenet_v2} BATCH THREADS ITERATIONS

Prints one line: "<fp32 images/s> <fx int8 images/s>" for a torchvision model with random
weights at 224 x 224 (FX needs the eager module, not TorchScript). Calibrates on random data:
speed does not depend on what the weights are.
"""
import ctypes
import os
import statistics
import sys
import time

import torch
import torchvision
from torch.ao.quantization import get_default_qconfig_mapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx


ONEDNN_ISA_NAMES = {0x1: "sse41", 0x3: "avx", 0x7: "avx2", 0x407: "avx2_vnni", 0x27: "avx512_core",
                    0x67: "avx512_core_vnni", 0xe7: "avx512_core_bf16", 0x3e7: "avx512_core_amx"}


def run_like_ptq_server():
    """Puts this process in the state ptq-server and the C++ benchmarks time in: onednn below
    AMX on CPUs with AMX unless ONEDNN_MAX_CPU_ISA says otherwise (core/src/devices.cc), and
    glibc's allocator thresholds fixed (bench/steady_allocator.h). Call before torch runs a
    convolution. Returns the instruction set onednn dispatches to."""
    libc = ctypes.CDLL("libc.so.6")
    libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD
    libc.mallopt(-1, 128 << 20)  # M_TRIM_THRESHOLD
    dnnl = ctypes.CDLL("libdnnl.so.2")  # the onednn LibTorch itself loaded
    with open("/proc/cpuinfo") as f:
        has_amx = " amx_int8" in f.read()
    if has_amx and "ONEDNN_MAX_CPU_ISA" not in os.environ and "DNNL_MAX_CPU_ISA" not in os.environ:
        dnnl.dnnl_set_max_cpu_isa(0xe7)  # dnnl_cpu_isa_avx512_core_bf16
    return ONEDNN_ISA_NAMES.get(dnnl.dnnl_get_effective_cpu_isa(), "all")


def images_per_second(models, batch, iterations, rounds=9):
    """Median images/s of each model over `rounds` rounds of `iterations` forwards that time
    the models in turn, so a slow moment of a shared 2-core machine lands on all of them alike
    (back-to-back single timings moved int8/fp32 ratios by 30% between runs)."""
    speeds = [[] for _ in models]
    with torch.no_grad():
        for model in models:
            model(batch)
        for _ in range(rounds):
            for model, speed in zip(models, speeds):
                start = time.perf_counter()
                for _ in range(iterations):
                    model(batch)
                speed.append(batch.shape[0] * iterations / (time.perf_counter() - start))
    return [statistics.median(speed) for speed in speeds]


def main():
    name, batch_size, threads, iterations = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    run_like_ptq_server()
    torch.set_num_threads(threads)
    torch.backends.quantized.engine = "onednn"
    model = getattr(torchvision.models, name)().eval()
    batch = torch.randn(batch_size, 3, 224, 224)
    fp32 = torch.jit.freeze(torch.jit.script(model))
    prepared = prepare_fx(model, get_default_qconfig_mapping("onednn"), (batch,))
    with torch.no_grad():
        prepared(batch)
    int8 = torch.jit.freeze(torch.jit.script(convert_fx(prepared)))
    fp32_speed, int8_speed = images_per_second([fp32, int8], batch, max(1, iterations // 5), rounds=5)
    print(f"{fp32_speed:.1f} {int8_speed:.1f}")


if __name__ == "__main__":
    main()
