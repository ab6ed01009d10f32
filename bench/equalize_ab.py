#!/usr/bin/python3
"""Cross-layer equalization (ptq.equalize) on and off, paired on the same images.

Usage: /usr/bin/python3 bench/equalize_ab.py [--build build] [--out bench/results] [--threads 2] [--only NAME]
                                             [--per-tensor]

For each bundled Fashion-MNIST model and the shared ImageNet MobileNetV1-0.25 (when ../shared is
present), a real ptq-server quantizes the model with the defaults twice through `ptq-client
submit --wait --json`: `equalize: false` and `equalize: true` (the default). Calibration and
evaluation as in bench/results/reference_tables.md. Each int8 TorchScript file is run on the
evaluation images here (and the fp32 file), so the two are compared image by image: the images
only one of them agrees with fp32's top-1 on, those only one classifies right, and the exact
McNemar p of each split. Prints Markdown and writes
OUT/equalize_ab.md. With --per-tensor, the same with per-tensor weights (`weight_quantizer:
AbsmaxQuantizer`, where equalization balances weight ranges), written to
OUT/equalize_ab_per_tensor.md.
"""
import argparse
import datetime
import os
import platform
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fx_int8_speed import run_like_ptq_server  # noqa: E402
from reference_tables import (CALIBRATION_BATCHES, CALIBRATION_BATCH_SIZE, ROOT, Server, accuracy,  # noqa: E402
                              dataset_tensors, fashion_models, job_config, paired_comparison, publish, shared_model,
                              variants)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default="", help="only models whose name contains this")
    parser.add_argument("--per-tensor", action="store_true", help="per-tensor weights (AbsmaxQuantizer)")
    args = parser.parse_args()
    weights = {"weight_quantizer": "AbsmaxQuantizer"} if args.per_tensor else {}
    onednn_isa = run_like_ptq_server()
    torch.set_num_threads(args.threads)
    torch.backends.quantized.engine = "onednn"
    scratch = tempfile.mkdtemp(prefix="ptq-equalize-ab-")
    rows = []
    for model in fashion_models() + shared_model():
        if args.only not in model["name"]:
            continue
        print(f"== {model['name']}", file=sys.stderr, flush=True)
        server = Server(args.build, model["data_root"], args.threads, scratch)
        evaluation = dataset_tensors(model, "evaluation", None)
        try:
            runs = []
            for equalize in (False, True):
                job = server.submit(job_config(model, f"equalize {equalize}", {"equalize": equalize, **weights}))
                int8_file = torch.jit.load(os.path.join(server.result_dir(job), "int8_infer", "model.pt"))
                runs.append((variants(job), accuracy(int8_file, *evaluation)[2]))
            fp32_file = torch.jit.load(os.path.join(server.result_dir(job), "fp32", "model.pt"))
            fp32_pred = accuracy(fp32_file, evaluation[0].float(), evaluation[1])[2]
            (off, off_pred), (on, on_pred) = runs
            rows.append((model["name"], off, on, paired_comparison(on_pred, off_pred, fp32_pred),
                         paired_comparison(on_pred, off_pred, evaluation[1])))
        finally:
            server.stop()
    lines = [f"Measured {datetime.date.today()} on {platform.node()} ({os.cpu_count()} cores, {args.threads} threads, "
             f"onednn {onednn_isa}), `/usr/bin/python3 bench/equalize_ab.py{' --per-tensor' if args.per_tensor else ''}`. "
             "The defaults (PercentileQuantizer, BatchNorm folded, bias correction, "
             f"{'per-tensor weights: weight ranges equalized' if args.per_tensor else 'per-channel weights'}) "
             "with `equalize` off and on; calibration on "
             f"the first {CALIBRATION_BATCHES * CALIBRATION_BATCH_SIZE} images of the calibration set, evaluation "
             "on the whole evaluation set (the shared model: all 1000 images of imagenet-sample, its 320 "
             "calibration images included). Real int8 TorchScript files.", "",
             "| model | fp32 top-1 | int8 top-1 off → on | drop off → on | agreement with fp32 off → on "
             "| agrees with fp32 only with / only without equalization (McNemar p) "
             "| right only with / only without (McNemar p) |",
             "|---|---|---|---|---|---|---|"]
    for name, off, on, (agree_on, agree_off, agree_p), (only_on, only_off, p) in rows:
        fp32 = off["fp32"]["top1"]
        lines.append(f"| {name} | {fp32:.2f} | {off['int8']['top1']:.2f} → {on['int8']['top1']:.2f} "
                     f"| {fp32 - off['int8']['top1']:.2f} → {fp32 - on['int8']['top1']:.2f} "
                     f"| {off['int8']['agreement_top1']:.2f}% → {on['int8']['agreement_top1']:.2f}% "
                     f"| {agree_on} / {agree_off} (p {agree_p:.2f}) | {only_on} / {only_off} (p {p:.2f}) |")
    publish("\n".join(lines) + "\n", args.out, "equalize_ab_per_tensor.md" if args.per_tensor else "equalize_ab.md")


if __name__ == "__main__":
    main()
