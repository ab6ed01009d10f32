#!/usr/bin/python3
"""The accuracy and speed tables of issue 8, in one run on this machine.

Usage: /usr/bin/python3 bench/reference_tables.py [--build build] [--out bench/results]
                                                   [--eval-images N] [--threads 2]

1. Accuracy: each bundled Fashion-MNIST model (and the shared ImageNet MobileNetV1-0.25 when
   ../shared is present) quantized by a real ptq-server through `ptq-client submit --wait
   --json`, for each activation quantizer with per-channel weights, per-tensor weights, the
   seed's MobileNetV3 recipe, AdaRound, sensitivity analysis and accuracy budgets: fp32 /
   simulated int8 / real int8 top-1/top-5, agreement, McNemar's test against the previous
   default, calibration time beside FX's, and the layers a budget left in float.
2. PyTorch's own PTQ (torch.ao FX, onednn default qconfig) on the same calibration images
   (the first 320 of the calibration set) and the same evaluation images: accuracy and
   calibration wall time (median of 3 runs each), next to ours with HistQuantizer 0.9999 and
   with MSEQuantizer, and which images only one of the two classifies right (McNemar's test).
3. Speed, batch 32 at each model's input size, the same threads: fp32 (frozen TorchScript), our
   int8 TorchScript, PyTorch FX int8 (medians of interleaved rounds), ONNX Runtime on our QDQ
   file; and calibration time.
Prints Markdown and writes it to OUT/reference_tables.md with the date and the machine.
"""
import argparse
import copy
import datetime
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np
import torch
from torch.ao.quantization import get_default_qconfig_mapping
from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "models"))
import train_fashion_mnist  # noqa: E402  (the reference models' definitions and preprocessing)
from fx_int8_speed import images_per_second, run_like_ptq_server  # noqa: E402  (bench/, this script's folder)

SHARED = os.environ.get("PTQ_SHARED_DIR", os.path.join(os.path.dirname(ROOT), "shared"))
CALIBRATION_BATCHES, CALIBRATION_BATCH_SIZE = 10, 32

# Our configurations: (label, ptq section; None: no ptq keys at all). Per-channel weights and
# fuse on unless said.
CONFIGS = [
    ("Defaults (no ptq keys)", None),
    ("Seed defaults (KL, fuse off)", {"activation_quantizer": "KLQuantizer", "fuse": False}),
    ("Absmax", {"activation_quantizer": "AbsmaxQuantizer"}),
    ("KL (seed default)", {"activation_quantizer": "KLQuantizer"}),
    ("Hist 0.999", {"activation_quantizer": "HistQuantizer", "hist_percent": 0.999}),
    ("Hist 0.9999", {"activation_quantizer": "HistQuantizer", "hist_percent": 0.9999}),
    ("MSE", {"activation_quantizer": "MSEQuantizer"}),
    ("Percentile 99.99", {"activation_quantizer": "PercentileQuantizer"}),
    ("Hist 0.9999, per-tensor weights", {"activation_quantizer": "HistQuantizer", "hist_percent": 0.9999,
                                         "weight_quantizer": "AbsmaxQuantizer"}),
    ("seed MNV3 recipe (Hist 127/0.999, skip_se_quant)", {"activation_quantizer": "HistQuantizer",
                                                          "upsample_bins": 127, "hist_percent": 0.999,
                                                          "skip_se_quant": True}),
    ("Defaults + AdaRound (200 steps)", {"weight_rounding": "adaround", "adaround_iterations": 200}),
    ("auto (chosen on 2 held-out batches)", {"activation_quantizer": "auto"}),
    ("Defaults + sensitivity (2 batches held out)", {"sensitivity": True}),
    ("Defaults + budget: agreement >= 98%, drop <= 0.2 (4 batches held out)",
     {"min_agreement": 98, "max_top1_drop": 0.2, "holdout_batches": 4}),
    ("Hist 0.9999, per-tensor weights + budget: agreement >= 99% (4 batches held out)",
     {"activation_quantizer": "HistQuantizer", "hist_percent": 0.9999, "weight_quantizer": "AbsmaxQuantizer",
      "min_agreement": 99, "holdout_batches": 4}),
]
# Each row's int8 predictions are compared with this row's (the seed's defaults, our default
# until 2026-11-30) by McNemar's test.
PREVIOUS_DEFAULT = "Seed defaults (KL, fuse off)"
# Our rows in the comparison with PyTorch FX: the setting the earlier tables compared, then
# MSE (threshold minimizing each activation's quantization error).
OURS_FOR_COMPARISON = ["Hist 0.9999", "MSE"]


def fashion_models():
    models = []
    for name in train_fashion_mnist.MODELS:
        path = os.path.join(ROOT, "models", "fashion_mnist", name + ".pt")
        if os.path.exists(path):
            models.append({
                "name": f"{name} (Fashion-MNIST)", "arch": name, "path": path, "data_root": "/usr/share/datasets",
                "calibration": "fashion-mnist/train", "evaluation": "fashion-mnist/t10k",
                "input": {"size": 32, "resize_short": 0, "mean": [train_fashion_mnist.MEAN] * 3,
                          "std": [train_fashion_mnist.STD] * 3},
            })
    return models


def shared_model():
    path = os.path.join(SHARED, "models", "mobilenet_v1_0.25_224_keras_imagenet.pt")
    if not os.path.exists(path):
        print("../shared is absent: the ImageNet MobileNetV1-0.25 rows are skipped", file=sys.stderr)
        return []
    return [{"name": "MobileNetV1-0.25 (ImageNet, shared)", "arch": None, "path": path,
             "data_root": os.path.join(SHARED, "data"), "calibration": "imagenet-sample",
             "evaluation": "imagenet-sample",
             "input": {"size": 224, "resize_short": 256, "mean": [127.5] * 3, "std": [127.5] * 3}}]


def job_config(model, name, ptq=None):
    """A job on `model` calibrating on the server's first CALIBRATION_BATCHES batches of its
    calibration set and evaluating on its evaluation set, with `ptq` as the ptq section if given."""
    config = {"name": name, "model": {"path": model["path"]}, "input": model["input"],
              "calibration": {"source": "server", "path": model["calibration"],
                              "quant_batch_num": CALIBRATION_BATCHES, "quant_batch_size": CALIBRATION_BATCH_SIZE},
              "evaluate": {"path": model["evaluation"]}}
    if ptq is not None:
        config["ptq"] = ptq
    return config


class Server:
    """A real ptq-server on loopback with a temporary state directory."""

    def __init__(self, build, data_root, threads, scratch):
        self.state = tempfile.mkdtemp(dir=scratch)
        ready = os.path.join(self.state, "ready")
        self.log = open(os.path.join(self.state, "server.log"), "w")
        self.process = subprocess.Popen(
            [os.path.join(build, "server", "ptq-server"), "--listen", "127.0.0.1:0", "--insecure", "--state-dir",
             os.path.join(self.state, "state"), "--data-root", data_root, "--threads", str(threads),
             "--ready-file", ready], stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(300):
            if os.path.exists(ready):
                break
            time.sleep(0.1)
        with open(ready) as f:
            self.address = f.read().strip()
        self.client = os.path.join(build, "client", "ptq-client")

    def submit(self, config):
        path = os.path.join(self.state, "job.json")
        with open(path, "w") as f:
            json.dump(config, f)
        run = subprocess.run([self.client, "--server", self.address, "submit", "--config", path, "--wait", "--json"],
                             capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"job failed ({run.returncode}): {run.stderr}{run.stdout}")
        return json.loads(run.stdout)

    def result_dir(self, job):
        return os.path.join(self.state, "state", "results", job["job_id"])

    def stop(self):
        self.process.terminate()
        self.process.wait()
        self.log.close()


def variants(job):
    return {v["variant"]: v for v in job["metrics"]["variants"]}


def imagenet_tensors(folder, count, spec):
    """The seed's preprocessing with OpenCV, as core's C++ pipeline does it (tests check <= 1e-3)."""
    images, labels = [], []
    with open(os.path.join(folder, "val_list.txt")) as f:
        for line in f:
            if count is not None and len(images) == count:
                break
            file, label = line.split()
            image = cv2.cvtColor(cv2.imread(os.path.join(folder, file)), cv2.COLOR_BGR2RGB)
            h, w = image.shape[:2]
            short = spec["resize_short"]
            size = (short, int(h * short / w + 0.5)) if w < h else (int(w * short / h + 0.5), short)
            image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
            top, left = (image.shape[0] - spec["size"]) // 2, (image.shape[1] - spec["size"]) // 2
            image = image[top:top + spec["size"], left:left + spec["size"]].astype(np.float32)
            images.append(((image - spec["mean"]) / spec["std"]).transpose(2, 0, 1))
            labels.append(int(label))
    return torch.from_numpy(np.stack(images)), torch.tensor(labels)


def dataset_tensors(model, which, count):
    if model["arch"] is None:
        return imagenet_tensors(os.path.join(model["data_root"], model[which]), count, model["input"])
    prefix = os.path.join(model["data_root"], model[which])
    images = train_fashion_mnist.read_idx(prefix + "-images-idx3-ubyte.gz")[:count]
    labels = train_fashion_mnist.read_idx(prefix + "-labels-idx1-ubyte.gz")[:count]
    return train_fashion_mnist.preprocess(images), torch.from_numpy(labels.astype(np.int64))


def accuracy(model, x, y):
    top1 = top5 = 0
    agree = []
    with torch.no_grad():
        for i in range(0, x.shape[0], 250):
            logits = model(x[i:i + 250])
            best = logits.topk(5, 1).indices
            top1 += (best[:, 0] == y[i:i + 250]).sum().item()
            top5 += (best == y[i:i + 250, None]).any(1).sum().item()
            agree.append(best[:, 0])
    return 100.0 * top1 / len(y), 100.0 * top5 / len(y), torch.cat(agree)


def paired_comparison(ours_pred, fx_pred, labels):
    """Images only ours classifies right, images only FX does, and the exact two-sided McNemar
    p-value of that split: top-1 drops a few images apart are within what chance gives two
    int8 models that disagree on a few hundred images."""
    ours_right, fx_right = ours_pred == labels, fx_pred == labels
    only_ours = int((ours_right & ~fx_right).sum())
    only_fx = int((~ours_right & fx_right).sum())
    n = only_ours + only_fx
    tail = sum(math.comb(n, k) for k in range(min(only_ours, only_fx) + 1)) / 2 ** n if n else 1.0
    return only_ours, only_fx, min(1.0, 2 * tail)


TIMING_RUNS = 3  # calibration times are the median of this many runs, ours and FX's alike


def our_calibration_seconds(server, config, job):
    """Median calibration step of `job` and TIMING_RUNS - 1 reruns of its config (evaluating
    one batch only: the rerun is for the timing)."""
    rerun = dict(config, evaluate=dict(config["evaluate"], limit=32))
    seconds = [job["metrics"]["timings"]["calibration_seconds"]]
    for _ in range(TIMING_RUNS - 1):
        seconds.append(server.submit(rerun)["metrics"]["timings"]["calibration_seconds"])
    return statistics.median(seconds)


def pytorch_fx(model, calibration, evaluation):
    """PyTorch's own PTQ of the eager twin of a bundled model: accuracy, calibration time
    (median of TIMING_RUNS), model."""
    eager, _ = train_fashion_mnist.build(model["arch"])
    eager.load_state_dict(torch.jit.load(model["path"]).state_dict())
    eager.eval()
    fp32_top1, _, fp32_pred = accuracy(eager, *evaluation)
    seconds = []
    for _ in range(TIMING_RUNS):
        fresh = copy.deepcopy(eager)  # prepare_fx may rewrite the module it is given
        start = time.perf_counter()
        prepared = prepare_fx(fresh, get_default_qconfig_mapping("onednn"), (calibration[0][:1],))
        with torch.no_grad():
            for i in range(0, calibration[0].shape[0], CALIBRATION_BATCH_SIZE):
                prepared(calibration[0][i:i + CALIBRATION_BATCH_SIZE])
        int8 = convert_fx(prepared)
        seconds.append(time.perf_counter() - start)
    top1, top5, pred = accuracy(int8, *evaluation)
    return {"fp32_top1": fp32_top1, "top1": top1, "top5": top5, "pred": pred,
            "agreement": 100.0 * (pred == fp32_pred).float().mean().item(),
            "calibration_seconds": statistics.median(seconds), "model": torch.jit.freeze(torch.jit.script(int8))}


def publish(text, out_dir, filename):
    """Prints a results table and writes it to OUT_DIR/FILENAME."""
    print(text)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, filename), "w") as f:
        f.write(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", default=os.path.join(ROOT, "build"))
    parser.add_argument("--out", default=os.path.join(ROOT, "bench", "results"))
    parser.add_argument("--eval-images", type=int, default=0, help="0: the whole evaluation set")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default="", help="only models whose name contains this")
    args = parser.parse_args()
    onednn_isa = run_like_ptq_server()
    torch.set_num_threads(args.threads)
    torch.backends.quantized.engine = "onednn"
    scratch = tempfile.mkdtemp(prefix="ptq-tables-")
    accuracy_rows, peer_rows, speed_rows = [], [], []
    comparisons, fx_calibration_seconds = {}, {}
    for model in fashion_models() + shared_model():
        if args.only not in model["name"]:
            continue
        print(f"== {model['name']}", file=sys.stderr, flush=True)
        server = Server(args.build, model["data_root"], args.threads, scratch)
        jobs, job_configs = {}, {}
        evaluation = dataset_tensors(model, "evaluation", args.eval_images or None)
        predictions = {}
        try:
            for label, ptq in CONFIGS:
                if ptq is not None and "skip_se_quant" in ptq and "v3" not in (model["arch"] or ""):
                    continue
                config = job_config(model, label, None if ptq is None else dict({"fuse": True}, **ptq))
                if args.eval_images:
                    config["evaluate"]["limit"] = args.eval_images
                job = server.submit(config)
                jobs[label] = job
                job_configs[label] = config
                v = variants(job)
                int8_file = torch.jit.load(os.path.join(server.result_dir(job), "int8_infer", "model.pt"))
                predictions[label] = accuracy(int8_file, *evaluation)[2]
                with open(os.path.join(server.result_dir(job), "report.json")) as f:
                    budget = json.load(f).get("accuracy_budget")
                accuracy_rows.append((model["name"], label, v["fp32"], v["int8_simulated"], v["int8"],
                                      job["metrics"]["timings"]["calibration_seconds"], budget))
                print(f"   {label}: int8 top-1 {v['int8']['top1']:.2f}", file=sys.stderr, flush=True)
            our_seconds = {label: our_calibration_seconds(server, job_configs[label], jobs[label])
                           for label in OURS_FOR_COMPARISON}
            ours = jobs[OURS_FOR_COMPARISON[0]]
            size = model["input"]["size"]
            batch = torch.randn(32, 3, size, size)
            fp32_model = torch.jit.freeze(torch.jit.load(model["path"]).eval())
            our_int8 = torch.jit.load(os.path.join(server.result_dir(ours), "int8_infer", "model.pt"))
            with open(os.path.join(server.result_dir(ours), "report.json")) as f:
                server_isa = json.load(f)["onednn_isa"]
            if server_isa != onednn_isa:
                raise RuntimeError(f"ptq-server ran onednn on {server_isa}, this process on {onednn_isa}: "
                                   "the speeds would not compare")
            for row, (name, label, *_) in enumerate(accuracy_rows):
                if name == model["name"]:
                    comparisons[row] = paired_comparison(predictions[label], predictions[PREVIOUS_DEFAULT],
                                                         evaluation[1])
            fx = None
            if model["arch"] is not None:
                calibration = dataset_tensors(model, "calibration", CALIBRATION_BATCHES * CALIBRATION_BATCH_SIZE)
                fx = pytorch_fx(model, calibration, evaluation)
                fx_calibration_seconds[model["name"]] = fx["calibration_seconds"]
                for label in OURS_FOR_COMPARISON:
                    v = variants(jobs[label])
                    int8 = torch.jit.load(os.path.join(server.result_dir(jobs[label]), "int8_infer", "model.pt"))
                    paired = paired_comparison(accuracy(int8, *evaluation)[2], fx["pred"], evaluation[1])
                    peer_rows.append((model["name"], label, v["fp32"]["top1"], v["int8"]["top1"], v["int8"]["top5"],
                                      v["int8"]["agreement_top1"], our_seconds[label], fx, paired))
            ort = subprocess.run(["node", os.path.join(ROOT, "bench", "ort_speed.js"),
                                  os.path.join(server.result_dir(ours), "int8_infer", "model.onnx"), "32", "3",
                                  str(size), str(size), str(args.threads), "10"], capture_output=True, text=True)
            timed = [fp32_model, our_int8] + ([fx["model"]] if fx else [])
            speeds = images_per_second(timed, batch, 10)
            speed_rows.append((model["name"], speeds[0], speeds[1], speeds[2] if fx else None,
                               float(ort.stdout) if ort.returncode == 0 else None,
                               our_seconds[OURS_FOR_COMPARISON[0]],
                               fx["calibration_seconds"] if fx else None,
                               jobs[CONFIGS[0][0]]["metrics"]["timings"].get("model_load_seconds", 0.0)))
        finally:
            server.stop()

    lines = [f"Measured {datetime.date.today()} on {platform.node()} ({os.cpu_count()} cores, "
             f"{args.threads} threads, onednn {onednn_isa}), `/usr/bin/python3 bench/reference_tables.py`. Calibration: the first "
             f"{CALIBRATION_BATCHES * CALIBRATION_BATCH_SIZE} images of the calibration set "
             f"({CALIBRATION_BATCHES} x {CALIBRATION_BATCH_SIZE}); Fashion-MNIST calibrates on its training images and "
             "evaluates on the 10,000 test images; the shared ImageNet model calibrates and evaluates on "
             "imagenet-sample. Ours: fuse on, bias correction on (the default), onednn.", "",
             "### 1. Accuracy (ours, through ptq-server)", "",
             f"Against the previous default ({PREVIOUS_DEFAULT}): images only this row's int8 file / only "
             "the previous default's gets right, with McNemar's exact p (Python's run of both int8 files). "
             "Calibration s: this job's calibration step (one run), and PyTorch FX's (median of "
             f"{TIMING_RUNS}) for the model. Budget rows: the layers the budget left in float.", "",
             "| model | config | fp32 top-1/top-5 | int8 simulated top-1/top-5 | int8 top-1/top-5 | top-1 drop "
             "| agreement | vs previous default (p) | calibration s ours / FX | float layers (MACs) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row, (name, label, fp32, sim, int8, seconds, budget) in enumerate(accuracy_rows):
        only_this, only_previous, p_value = comparisons[row]
        fx_seconds = fx_calibration_seconds.get(name)
        float_layers = (f"{len(budget['float_layers'])} ({budget['float_mac_percent']:.1f}%)"
                        f"{'' if budget['met'] else ', budget not met'}" if budget else "-")
        lines.append(f"| {name} | {label} | {fp32['top1']:.2f}/{fp32['top5']:.2f} | {sim['top1']:.2f}/{sim['top5']:.2f} "
                     f"| {int8['top1']:.2f}/{int8['top5']:.2f} | {fp32['top1'] - int8['top1']:.2f} "
                     f"| {int8['agreement_top1']:.1f}% | {only_this} / {only_previous} (p {p_value:.2f}) "
                     f"| {seconds:.2f} / {f'{fx_seconds:.2f}' if fx_seconds else '-'} | {float_layers} |")
    lines += ["", "### 2. Against PyTorch's own PTQ (torch.ao FX, onednn default qconfig)",
              "", "| model | ours | fp32 top-1 | ours int8 top-1/top-5 | ours drop | ours agreement | FX int8 top-1/top-5 "
              "| FX drop | FX agreement | images only ours / only FX gets right (McNemar p) | calibration s ours / FX |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, label, fp32_top1, top1, top5, agreement, seconds, fx, (only_ours, only_fx, p_value) in peer_rows:
        lines.append(f"| {name} | {label} | {fp32_top1:.2f} | {top1:.2f}/{top5:.2f} | {fp32_top1 - top1:.2f} | {agreement:.1f}% "
                     f"| {fx['top1']:.2f}/{fx['top5']:.2f} | {fx['fp32_top1'] - fx['top1']:.2f} | {fx['agreement']:.1f}% "
                     f"| {only_ours} / {only_fx} (p {p_value:.2f}) | {seconds:.2f} / {fx['calibration_seconds']:.2f} |")
    lines += ["", f"### 3. Speed (images/s, batch 32, random input at the model's size; median of 9 interleaved "
              f"rounds of 10 batches, ONNX Runtime's of 9 rounds in its own process; glibc's mmap threshold fixed, "
              f"as a long-running server's settles; ours: {OURS_FOR_COMPARISON[0]})",
              "",
              "| model | fp32 TorchScript | our int8 | int8 / fp32 | PyTorch FX int8 | ours / FX | ORT on our QDQ "
              "| calibration s ours / FX | ours: model load s, first job |", "|---|---|---|---|---|---|---|---|---|"]
    for name, fp32, ours, fx, ort, our_seconds, fx_seconds, first_load in speed_rows:
        lines.append(f"| {name} | {fp32:.0f} | {ours:.0f} | {ours / fp32:.2f}x | {f'{fx:.0f}' if fx else '-'} "
                     f"| {f'{ours / fx:.2f}x' if fx else '-'} | {f'{ort:.0f}' if ort else '-'} "
                     f"| {our_seconds:.2f} / {f'{fx_seconds:.2f}' if fx_seconds else '-'} | {first_load:.2f} |")
    lines.append("")
    lines.append(f"Calibration time of ours is the job's calibration step as ptq-server reports it: reading the "
                 f"images, the passes, and loading the model, which an earlier job on it had imported (ptq-server "
                 f"remembers its last few models); the first job on a model also reads and parses the TorchScript "
                 f"file, and the last column is that job's whole model load. FX's is prepare_fx + the calibration "
                 f"passes + convert_fx on the eager model and images already in memory. Both are the median of "
                 f"{TIMING_RUNS} runs.")
    publish("\n".join(lines) + "\n", args.out, "reference_tables.md")


if __name__ == "__main__":
    main()
