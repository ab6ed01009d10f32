#!/usr/bin/python3
"""PyTorch's own PTQ (torch.ao FX, onednn qconfig) of a TorchScript model's eager twin, timed.

Usage: fx_int8_speed.py {mobilenet_v3_large|mobilenet_v2} BATCH THREADS ITERATIONS

Prints one line: "<fp32 images/s> <fx int8 images/s>" for a torchvision model with random
weights at 224 x 224 (FX needs the eager module, not TorchScript). Calibrates on random data:
speed does not depend on what the weights are.
"""
import sys
import time

import torch
import torchvision
from torch.ao.quantization import get_default_qconfig_mapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx


def images_per_second(model, batch, iterations):
    with torch.no_grad():
        model(batch)
        start = time.perf_counter()
        for _ in range(iterations):
            model(batch)
        return batch.shape[0] * iterations / (time.perf_counter() - start)


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
    print(f"{images_per_second(fp32, batch, iterations):.1f} {images_per_second(int8, batch, iterations):.1f}")


if __name__ == "__main__":
    main()
