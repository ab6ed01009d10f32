#!/usr/bin/python3
"""Trains the bundled reference models on Debian's Fashion-MNIST and saves them as TorchScript.

Usage: /usr/bin/python3 models/train_fashion_mnist.py [--out models/fashion_mnist] [--only NAME ...]

Models: MobileNetV1 (defined here, as in the PaddleSlim seed; torchvision has none), and
torchvision's MobileNetV2, MobileNetV3-large and MobileNetV3-small with num_classes=10. Images
are 28x28 grayscale; the models see them resized to 32x32 (OpenCV bilinear, as ptq-server's
preprocessing does) and replicated to 3 channels, so the ImageNet-shaped architectures run
unchanged. Training is deterministic from --seed on a given machine and thread count: fixed
seeds, fixed data order, 2 intra-op threads.

Each model gets NAME.pt (torch.jit.script) and NAME.json: preprocessing, classes, training
recipe, fp32 top-1/top-5 on the 10,000 test images.
"""
import argparse
import gzip
import json
import os
import time

import cv2
import numpy as np
import torch
import torchvision
from torch import nn
import torch.nn.functional as F

DATA_DIR = "/usr/share/datasets/fashion-mnist"
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot"]
INPUT_SIZE = 32
# Per-channel statistics of the training images, in 0..255 units.
MEAN = 72.94
STD = 90.02


class DepthwiseSeparable(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.depthwise = nn.Sequential(nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
                                       nn.BatchNorm2d(cin), nn.ReLU(inplace=True))
        self.pointwise = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout),
                                       nn.ReLU(inplace=True))

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class MobileNetV1(nn.Module):
    """MobileNetV1 as in the seed's model zoo: a 3x3 stem, 13 depthwise-separable blocks."""

    LAYOUT = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1),
              (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]

    def __init__(self, num_classes=10, scale=1.0):
        super().__init__()
        width = lambda c: max(8, int(c * scale))
        layers = [nn.Sequential(nn.Conv2d(3, width(32), 3, 2, 1, bias=False), nn.BatchNorm2d(width(32)),
                                nn.ReLU(inplace=True))]
        cin = width(32)
        for cout, stride in self.LAYOUT:
            layers.append(DepthwiseSeparable(cin, width(cout), stride))
            cin = width(cout)
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x):
        x = self.pool(self.features(x))
        return self.fc(torch.flatten(x, 1))


def build(name):
    if name == "mobilenet_v1":
        return MobileNetV1(num_classes=10, scale=0.5), {"scale": 0.5}
    if name == "mobilenet_v2":
        return torchvision.models.mobilenet_v2(num_classes=10, width_mult=0.5), {"width_mult": 0.5}
    if name == "mobilenet_v3_large":
        return torchvision.models.mobilenet_v3_large(num_classes=10, width_mult=0.5), {"width_mult": 0.5}
    if name == "mobilenet_v3_small":
        return torchvision.models.mobilenet_v3_small(num_classes=10), {"width_mult": 1.0}
    raise ValueError(name)


MODELS = ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small"]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def preprocess(images):
    """uint8 [N, 28, 28] -> float32 [N, 3, 32, 32], exactly as the server preprocesses them."""
    resized = np.stack([cv2.resize(img, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
                        for img in images])
    x = (resized.astype(np.float32) - MEAN) / STD
    return torch.from_numpy(np.repeat(x[:, None], 3, axis=1))


def load(split):
    images = read_idx(os.path.join(DATA_DIR, f"{split}-images-idx3-ubyte.gz"))
    labels = read_idx(os.path.join(DATA_DIR, f"{split}-labels-idx1-ubyte.gz"))
    return preprocess(images), torch.from_numpy(labels.astype(np.int64))


def augment(x, generator):
    """Random horizontal flips and random 2-pixel shifts (zero padding)."""
    flip = torch.rand(x.shape[0], generator=generator) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    padded = F.pad(x, (2, 2, 2, 2), value=-MEAN / STD)
    dy, dx = torch.randint(0, 5, (2,), generator=generator).tolist()
    return padded[:, :, dy:dy + INPUT_SIZE, dx:dx + INPUT_SIZE]


def evaluate(model, x, y):
    model.eval()
    top1 = top5 = 0
    with torch.no_grad():
        for i in range(0, x.shape[0], 500):
            logits = model(x[i:i + 500])
            best5 = logits.topk(5, 1).indices
            top1 += (best5[:, 0] == y[i:i + 500]).sum().item()
            top5 += (best5 == y[i:i + 500, None]).any(1).sum().item()
    return 100.0 * top1 / x.shape[0], 100.0 * top5 / x.shape[0]


def train(name, args, train_x, train_y, test_x, test_y):
    torch.manual_seed(args.seed)
    model, arch = build(name)
    generator = torch.Generator().manual_seed(args.seed)
    steps_per_epoch = train_x.shape[0] // args.batch_size
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                                weight_decay=4e-5)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=args.lr, epochs=args.epochs,
                                                   steps_per_epoch=steps_per_epoch)
    start = time.time()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(train_x.shape[0], generator=generator)
        for step in range(steps_per_epoch):
            index = order[step * args.batch_size:(step + 1) * args.batch_size]
            loss = F.cross_entropy(model(augment(train_x[index], generator)), train_y[index],
                                   label_smoothing=0.05)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        top1, _ = evaluate(model, test_x, test_y)
        print(f"{name} epoch {epoch + 1}/{args.epochs}: loss {loss.item():.3f} test top-1 {top1:.2f} "
              f"({time.time() - start:.0f} s)", flush=True)
    top1, top5 = evaluate(model, test_x, test_y)
    return model, arch, top1, top5, time.time() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "fashion_mnist"))
    parser.add_argument("--only", nargs="*", choices=MODELS, default=MODELS)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--train-images", type=int, default=0,
                        help="train on the first N images only (0: all 60000); for quick checks")
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.use_deterministic_algorithms(True)
    os.makedirs(args.out, exist_ok=True)
    train_x, train_y = load("train")
    if args.train_images:
        train_x, train_y = train_x[:args.train_images], train_y[:args.train_images]
    test_x, test_y = load("t10k")
    for name in args.only:
        model, arch, top1, top5, seconds = train(name, args, train_x, train_y, test_x, test_y)
        model.eval()
        scripted = torch.jit.script(model)
        path = os.path.join(args.out, name + ".pt")
        torch.jit.save(scripted, path)
        # What the saved file gives, not the eager model: the number users can reproduce.
        top1, top5 = evaluate(torch.jit.load(path), test_x, test_y)
        sidecar = {
            "model": name + ".pt",
            "format": f"TorchScript (torch.jit.script, torch {torch.__version__})",
            "architecture": name, "arch": arch, "num_classes": 10, "classes": CLASSES,
            "input": {"shape": [-1, 3, INPUT_SIZE, INPUT_SIZE], "name": "x"},
            "preprocess": {"color_order": "RGB", "layout": "NCHW", "dtype": "float32",
                           "size": INPUT_SIZE, "resize_short": 0,
                           "resize": "whole 28x28 image to 32x32, OpenCV INTER_LINEAR",
                           "channels": "grayscale replicated to 3", "mean": [MEAN] * 3,
                           "std": [STD] * 3, "formula": "x = (pixel - mean) / std, pixel in 0..255"},
            "dataset": {"name": "Fashion-MNIST (Debian dataset-fashion-mnist)", "train": 60000,
                        "test": 10000, "path": DATA_DIR},
            "training": {"script": "models/train_fashion_mnist.py", "seed": args.seed,
                         "epochs": args.epochs, "batch_size": args.batch_size,
                         "optimizer": "SGD nesterov momentum 0.9, weight decay 4e-5, one-cycle lr",
                         "max_lr": args.lr, "label_smoothing": 0.05,
                         "augmentation": "horizontal flip, 2-pixel shifts", "threads": 2,
                         "seconds": round(seconds, 1)},
            "fp32": {"top1": round(top1, 2), "top5": round(top5, 2), "images": 10000},
        }
        with open(os.path.join(args.out, name + ".json"), "w") as f:
            json.dump(sidecar, f, indent=2)
            f.write("\n")
        print(f"{name}: top-1 {top1:.2f} top-5 {top5:.2f}, {os.path.getsize(path) / 1e6:.2f} MB, "
              f"{seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main()
