#!/usr/bin/python3
"""deploy/examples/mnv1.json and mnv3.json run as given, with models made as README says.

Usage: check_examples.py REPO PTQ_SERVER PTQ_CLIENT

No ImageNet weights are reachable offline, so the models come from models/export_imagenet.py
with --random-weights; the configs are copied byte for byte beside them and submitted with
`ptq-client submit --config ... --wait` to a real ptq-server whose data root holds an
`ILSVRC2012` folder in the seed's layout (val_list.txt and JPEG files, drawn here). Also checks
the Paddle weight conversion on a state dict written in Paddle's layout: the model it makes
computes what the model the weights came from computes, and a file of another architecture is
refused naming the array.
"""
import json
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np
import torch

PYTHON = "/usr/bin/python3"
CALIBRATION_IMAGES = 320  # mnv3.json's 10 batches of 32


def check_paddle_conversion(repo, work):
    sys.path.insert(0, os.path.join(repo, "models"))
    from train_fashion_mnist import MobileNetV1

    torch.manual_seed(1)
    reference = MobileNetV1(num_classes=1000, scale=1.0)
    with torch.no_grad():
        for module in reference.modules():
            if isinstance(module, torch.nn.BatchNorm2d):  # statistics other than 0 and 1
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    reference.eval()
    # Paddle's layout: its own names, module order, Linear weights as [in, out].
    state = {}
    for name, tensor in reference.state_dict().items():
        if name.endswith("num_batches_tracked"):
            continue
        array = tensor.numpy()
        state["paddle." + name.replace("running_", "_")] = array.T.copy() if name == "fc.weight" else array
    state["StructuredToParameterName@@"] = {name: name for name in state}
    weights = os.path.join(work, "mobilenetv1.pdparams")
    with open(weights, "wb") as f:
        pickle.dump(state, f, protocol=4)

    converted_path = os.path.join(work, "converted.pt")
    subprocess.run([PYTHON, os.path.join(repo, "models", "export_imagenet.py"), "mobilenet_v1",
                    "--weights", weights, "--out", converted_path], check=True)
    converted = torch.jit.load(converted_path)
    images = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        difference = (converted(images) - reference(images)).abs().max().item()
    assert difference < 1e-4, f"converted MobileNetV1 differs from its source by {difference}"

    del state["paddle.fc.bias"]
    state["paddle.fc.bias"] = np.zeros(10, np.float32)  # a 10-class head
    with open(weights, "wb") as f:
        pickle.dump(state, f, protocol=4)
    refused = subprocess.run([PYTHON, os.path.join(repo, "models", "export_imagenet.py"), "mobilenet_v1",
                              "--weights", weights, "--out", converted_path], capture_output=True, text=True)
    assert refused.returncode != 0 and "paddle.fc.bias has shape (10,)" in refused.stderr, refused.stderr
    print("paddle conversion: outputs equal (max difference %.2g), a wrong head refused" % difference)


def make_imagenet_folder(root):
    os.makedirs(os.path.join(root, "val"))
    generator = np.random.default_rng(0)
    lines = []
    for i in range(CALIBRATION_IMAGES):
        height, width = generator.integers(200, 320, size=2)
        image = cv2.GaussianBlur(generator.integers(0, 256, (height, width, 3), dtype=np.uint8), (9, 9), 0)
        name = "val/image_%04d.JPEG" % i
        cv2.imwrite(os.path.join(root, name), image)
        lines.append("%s %d\n" % (name, i % 1000))
    with open(os.path.join(root, "val_list.txt"), "w") as f:
        f.writelines(lines)


def start_server(server, work):
    ready = os.path.join(work, "ready")
    log = open(os.path.join(work, "server.log"), "w")
    process = subprocess.Popen([server, "--listen", "127.0.0.1:0", "--insecure", "--state-dir",
                                os.path.join(work, "state"), "--data-root", os.path.join(work, "data"),
                                "--ready-file", ready, "--threads", "2"], stdout=log, stderr=log)
    for _ in range(600):
        if os.path.exists(ready):
            with open(ready) as f:
                address = f.readline().strip()
            if address:
                return process, address
        if process.poll() is not None:
            break
        time.sleep(0.1)
    process.kill()
    sys.exit("ptq-server did not become ready:\n" + open(os.path.join(work, "server.log")).read())


def main():
    repo, server, client = (os.path.abspath(path) for path in sys.argv[1:4])
    torch.set_num_threads(2)
    work = tempfile.mkdtemp(prefix="ptq-examples-")
    process = None
    try:
        check_paddle_conversion(repo, work)
        make_imagenet_folder(os.path.join(work, "data", "ILSVRC2012"))
        examples = os.path.join(work, "examples")
        os.makedirs(examples)
        process, address = start_server(server, work)
        for config, model in (("mnv1.json", "mobilenet_v1"), ("mnv3.json", "mobilenet_v3_large")):
            shutil.copyfile(os.path.join(repo, "deploy", "examples", config), os.path.join(examples, config))
            subprocess.run([PYTHON, os.path.join(repo, "models", "export_imagenet.py"), model,
                            "--random-weights", "--out", os.path.join(examples, model + ".pt")], check=True)
            started = time.time()
            run = subprocess.run([client, "--server", address, "submit", "--config",
                                  os.path.join("examples", config), "--wait", "--json"],
                                 cwd=work, capture_output=True, text=True, timeout=1200)
            assert run.returncode == 0, f"{config}: exit {run.returncode}\n{run.stderr}"
            job = json.loads(run.stdout)
            assert job["state"] == "JOB_STATE_SUCCEEDED", job
            counts = {variant["variant"]: int(variant["count"]) for variant in job["metrics"]["variants"]}
            assert counts and all(count == CALIBRATION_IMAGES for count in counts.values()), counts
            downloaded = os.path.join(work, "output_ptq", job["job_id"])  # the config's output_dir
            assert os.path.isfile(os.path.join(downloaded, "report.json")), os.listdir(work)
            print("%s: SUCCEEDED in %.0f s, evaluated on %s, downloaded to output_ptq/%s"
                  % (config, time.time() - started, counts, job["job_id"]))
    finally:
        if process is not None:
            process.kill()
            process.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
