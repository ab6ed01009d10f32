#!/usr/bin/python3
"""The bundled reference models are what their sidecars say, and training is repeatable.

Usage: check_reference_models.py accuracy | determinism

accuracy:    every models/fashion_mnist/*.pt, evaluated on the 10,000 Fashion-MNIST test
             images with the sidecar's preprocessing, reproduces the sidecar's fp32 top-1 and
             reaches >= 90%; all the files together stay <= 25 MB.
determinism: two short trainings with the same seed (models/train_fashion_mnist.py, 256
             images, one epoch) give identical weights.
"""
import glob
import json
import os
import subprocess
import sys
import tempfile

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "models"))
import train_fashion_mnist  # noqa: E402


def check_accuracy():
    torch.set_num_threads(2)
    test_x, test_y = train_fashion_mnist.load("t10k")
    models = sorted(glob.glob(os.path.join(ROOT, "models", "fashion_mnist", "*.pt")))
    failures = []
    if not models:
        failures.append("no bundled models")
    total_bytes = 0
    for path in models:
        total_bytes += os.path.getsize(path)
        with open(path[:-3] + ".json") as f:
            sidecar = json.load(f)
        top1, _ = train_fashion_mnist.evaluate(torch.jit.load(path), test_x, test_y)
        print(f"{os.path.basename(path)}: top-1 {top1:.2f} (sidecar {sidecar['fp32']['top1']})")
        if abs(top1 - sidecar["fp32"]["top1"]) > 0.011:
            failures.append(f"{path}: top-1 {top1:.2f} differs from its sidecar's {sidecar['fp32']['top1']}")
        if top1 < 90.0:
            failures.append(f"{path}: top-1 {top1:.2f} is under 90")
    print(f"all models: {total_bytes / 1e6:.1f} MB")
    if total_bytes > 25e6:
        failures.append(f"the bundled models take {total_bytes / 1e6:.1f} MB, over 25 MB")
    return failures


def check_determinism():
    states = []
    for _ in range(2):
        out = tempfile.mkdtemp()
        subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "models", "train_fashion_mnist.py"), "--out", out,
                        "--only", "mobilenet_v3_small", "--epochs", "1", "--train-images", "256"],
                       check=True, stdout=subprocess.DEVNULL)
        states.append(torch.jit.load(os.path.join(out, "mobilenet_v3_small.pt")).state_dict())
    differing = [name for name in states[0] if not torch.equal(states[0][name], states[1][name])]
    print(f"{len(states[0])} tensors, {len(differing)} differ")
    return [f"weights differ between two runs with the same seed: {differing[:5]}"] if differing else []


def main():
    failures = {"accuracy": check_accuracy, "determinism": check_determinism}[sys.argv[1]]()
    for failure in failures:
        print("FAILED:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
