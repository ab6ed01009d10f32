#!/usr/bin/python3
"""What an accuracy budget costs in int8 speed, measured against the all-int8 model in one run.

Usage: /usr/bin/python3 bench/budget_speed.py [--build build] [--out bench/results] [--threads 2]

For the shared ImageNet MobileNetV1-0.25 (when ../shared is present; with the defaults, and
with equalization asked for, which a budget otherwise turns off) and the bundled Fashion-MNIST
MobileNetV2 (per-tensor weights, the recipe a budget rescues), a real ptq-server
quantizes the model twice through `ptq-client submit --wait --json`: without a budget (the
baseline) and with one (the layers it left in float run as float convolutions between
dequantize and quantize). Both int8 TorchScript files and the fp32 one are timed in turn at
batch 32 on random input (medians of interleaved rounds, as bench/reference_tables.py times),
with the budget's float layers, their share of the MACs, and the held-out and evaluation
agreement. Prints Markdown and writes OUT/budget_speed.md.
"""
import argparse
import datetime
import json
import os
import platform
import sys
import tempfile

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fx_int8_speed import images_per_second, run_like_ptq_server  # noqa: E402
from reference_tables import (CALIBRATION_BATCHES, CALIBRATION_BATCH_SIZE, ROOT, Server, fashion_models,  # noqa: E402
                              job_config, publish, shared_model)

CASES = [
    # (model name contains, label, ptq section of the baseline, the budget's keys added to it)
    ("MobileNetV1-0.25", "defaults", {}, {"min_agreement": 98, "max_top1_drop": 0.2, "holdout_batches": 4}),
    # A budget turns equalization off unless asked for; this row asks, to show why.
    ("MobileNetV1-0.25", "defaults, equalize asked for", {"equalize": True},
     {"min_agreement": 98, "max_top1_drop": 0.2, "holdout_batches": 4}),
    ("mobilenet_v2", "per-tensor weights", {"weight_quantizer": "AbsmaxQuantizer"},
     {"min_agreement": 99, "holdout_batches": 4}),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    onednn_isa = run_like_ptq_server()
    torch.set_num_threads(args.threads)
    torch.backends.quantized.engine = "onednn"
    scratch = tempfile.mkdtemp(prefix="ptq-budget-speed-")
    models = shared_model() + fashion_models()
    rows = []
    for name_part, label, baseline, budget in CASES:
        model = next((m for m in models if name_part in m["name"]), None)
        if model is None:
            print(f"{name_part}: not present, skipped", file=sys.stderr)
            continue
        server = Server(args.build, model["data_root"], args.threads, scratch)
        try:
            jobs = []
            for ptq in (baseline, dict(baseline, **budget)):
                jobs.append(server.submit(job_config(model, label, ptq or None)))
            with open(os.path.join(server.result_dir(jobs[1]), "report.json")) as f:
                report = json.load(f)["accuracy_budget"]
            size = model["input"]["size"]
            batch = torch.randn(CALIBRATION_BATCH_SIZE, 3, size, size)
            timed = [torch.jit.freeze(torch.jit.load(os.path.join(server.result_dir(jobs[0]), "fp32", "model.pt")).eval())]
            timed += [torch.jit.load(os.path.join(server.result_dir(job), "int8_infer", "model.pt")) for job in jobs]
            fp32, all_int8, budgeted = images_per_second(timed, batch, 10 if size <= 64 else 3)
            agreement = [{v["variant"]: v for v in job["metrics"]["variants"]}["int8"]["agreement_top1"] for job in jobs]
            rows.append((model["name"], label, budget, report, fp32, all_int8, budgeted, agreement))
        finally:
            server.stop()
    lines = [f"Measured {datetime.date.today()} on {platform.node()} ({os.cpu_count()} cores, {args.threads} threads, "
             f"onednn {onednn_isa}), `/usr/bin/python3 bench/budget_speed.py`. Calibration: the first "
             f"{CALIBRATION_BATCHES * CALIBRATION_BATCH_SIZE} images of the calibration set, the budget's held-out "
             "batches among them; evaluation as in reference_tables.md. Images/s: batch 32, random input, median of 9 "
             "interleaved rounds.", "",
             "| model | recipe | budget | float layers (MACs) | held-out agreement all-int8 → budget "
             "| evaluation agreement all-int8 → budget | fp32 images/s | all-int8 images/s | budget images/s "
             "| budget / all-int8 |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, label, budget, report, fp32, all_int8, budgeted, agreement in rows:
        asked = ", ".join(f"{key} {value}" for key, value in budget.items() if key != "holdout_batches")
        lines.append(f"| {name} | {label} | {asked}{'' if report['met'] else ' (not met)'} "
                     f"| {len(report['float_layers'])} ({report['float_mac_percent']:.1f}%) "
                     f"| {report['all_int8']['agreement_top1']:.1f}% → {report['result']['agreement_top1']:.1f}% "
                     f"| {agreement[0]:.1f}% → {agreement[1]:.1f}% | {fp32:.0f} | {all_int8:.0f} | {budgeted:.0f} "
                     f"| {budgeted / all_int8:.2f}x |")
    publish("\n".join(lines) + "\n", args.out, "budget_speed.md")


if __name__ == "__main__":
    main()
