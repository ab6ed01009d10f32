#!/usr/bin/python3
"""Writes the ImageNet models that deploy/examples/mnv1.json and mnv3.json name, as TorchScript.

Usage:
  /usr/bin/python3 models/export_imagenet.py mobilenet_v1 --weights mobilenetv1_1.0.pdparams
  /usr/bin/python3 models/export_imagenet.py mobilenet_v3_large --weights mobilenet_v3_large-8738ca79.pth
  /usr/bin/python3 models/export_imagenet.py NAME --random-weights   (plumbing checks only)

The weights are not in the repository; download them where there is internet:
  mobilenet_v1: the seed's model (`--model=mobilenet_v1`, paddle.vision's pretrained
    MobileNetV1 1.0, 70.82 top-1 in the seed's table), a Paddle state dict
    https://paddle-hapi.bj.bcebos.com/models/mobilenetv1_1.0.pdparams
    It is a pickle of numpy arrays: read with numpy alone, no Paddle needed.
  mobilenet_v3_large: torchvision's IMAGENET1K_V1 weights (74.04 top-1 per torchvision), since
    the seed's Paddle MobileNetV3 uses Paddle's hard-sigmoid, which torchvision's layers do not
    https://download.pytorch.org/models/mobilenet_v3_large-8738ca79.pth

The model is written beside the example configs (deploy/examples/NAME.pt) unless --out says
otherwise; a config names its model relative to the config file.
"""
import argparse
import os
import pickle
import sys

import numpy as np
import torch
import torchvision

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train_fashion_mnist import MobileNetV1  # noqa: E402  (same architecture, 1000 classes)

EXAMPLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deploy", "examples")
ARCHITECTURES = {
    "mobilenet_v1": lambda: MobileNetV1(num_classes=1000, scale=1.0),
    "mobilenet_v3_large": lambda: torchvision.models.mobilenet_v3_large(num_classes=1000),
}


def paddle_arrays(path):
    """The arrays of a Paddle state dict file, in the order Paddle saved them (module order)."""
    with open(path, "rb") as f:
        state = pickle.load(f, encoding="latin1")
    if not isinstance(state, dict):
        raise SystemExit(f"{path}: not a Paddle state dict (a pickled dict of arrays)")
    return [(name, value) for name, value in state.items() if isinstance(value, np.ndarray)]


def load_paddle_weights(model, path):
    """Copies a paddle.vision MobileNetV1 state dict into `model`, parameter by parameter.

    Paddle names differ from ours but both follow the module order, and BatchNorm's four
    tensors come in the same order (weight, bias, mean, variance), so the i-th array goes to
    the i-th tensor; each shape is checked. Paddle's Linear stores [in, out], torch's [out, in].
    """
    targets = [(name, tensor) for name, tensor in model.state_dict().items()
               if not name.endswith("num_batches_tracked")]
    sources = paddle_arrays(path)
    if len(sources) != len(targets):
        raise SystemExit(f"{path}: {len(sources)} arrays, MobileNetV1 1.0 has {len(targets)} tensors")
    with torch.no_grad():
        for (source_name, array), (target_name, tensor) in zip(sources, targets):
            value = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
            if target_name == "fc.weight":
                value = value.t()
            if tuple(value.shape) != tuple(tensor.shape):
                raise SystemExit(f"{path}: {source_name} has shape {tuple(array.shape)}, "
                                 f"{target_name} needs {tuple(tensor.shape)}")
            tensor.copy_(value)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(ARCHITECTURES))
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--weights", help="the downloaded ImageNet weights (see above)")
    source.add_argument("--random-weights", action="store_true",
                        help="untrained weights: the configs run, the accuracy means nothing")
    parser.add_argument("--out", help="output file (default: deploy/examples/NAME.pt)")
    args = parser.parse_args()

    torch.manual_seed(0)
    model = ARCHITECTURES[args.name]()
    if args.weights and args.name == "mobilenet_v1":
        load_paddle_weights(model, args.weights)
    elif args.weights:
        model.load_state_dict(torch.load(args.weights, map_location="cpu"))
    model.eval()
    out = args.out or os.path.join(EXAMPLES_DIR, args.name + ".pt")
    torch.jit.script(model).save(out)
    print(f"wrote {os.path.normpath(out)} ({'random' if args.random_weights else args.weights} weights)")


if __name__ == "__main__":
    main()
