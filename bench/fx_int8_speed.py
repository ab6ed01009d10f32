#!/usr/bin/python3
"""PyTorch's own PTQ (torch.ao FX, onednn qconfig) of a TorchScript model's eager twin, timed.

Usage: fx_int8_speed.py {mobilenet_v3_large|mobilenet_v2} BATCH THREADS ITERATIONS

Prints one line: "<fp32 images/s> <fx int8 images/s>" for a torchvision model with random
weights at 224 x 224 (FX needs the eager module, not TorchScript). Calibrates on random data:
speed does not depend on what the weights are.
"""
import statistics
import sys
import time

import torch
import torchvision
from torch.ao.quantization import get_default_qconfig_mapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx


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
