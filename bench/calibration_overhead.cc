// Calibration time against the time of the same number of plain fp32 forward passes, on the
// same in-memory batches, in one run:
//   baseline: the frozen TorchScript model (LibTorch), forward over every batch;
//   ours:     QuantizationSession::Calibrate with the given quantizer, with and without bias
//             correction.
//
//   build/bench/bench_calibration_overhead [--model M.pt] [--data DIR] [--images 320]
//       [--batch 32] [--threads 2] [--quantizer MSEQuantizer] [--repeat 3]
//       [--size 224 --resize-short 256 --mean 127.5 --std 127.5]
//
// Reports the median of --repeat runs of each and the ratio (the number to drive down).
#include <ATen/Parallel.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>

#include "CLI/CLI.hpp"
#include "ptq/core/devices.h"
#include "ptq/core/in_memory_batches.h"
#include "ptq/core/quantization_session.h"
#include "steady_allocator.h"

namespace {

double Median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

template <typename Body>
double Seconds(Body&& body) {
  const auto start = std::chrono::steady_clock::now();
  body();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string onednn_isa = ptq::core::CapOnednnBelowAmx();  // as ptq-server runs
  ptq::bench::UseSteadyStateAllocator();
  std::string model = PTQ_SHARED_DIR "/models/mobilenet_v1_0.25_224_keras_imagenet.pt";
  std::string data = PTQ_SHARED_DIR "/data/imagenet-sample";
  int images = 320, batch = 32, threads = 2, repeat = 3;
  float mean = 127.5f, std_dev = 127.5f;
  int size = 224, resize_short = 256;
  std::string quantizer = "MSEQuantizer";
  std::optional<bool> equalize;
  CLI::App app{"calibration overhead"};
  app.add_option("--model", model);
  app.add_option("--data", data);
  app.add_option("--images", images);
  app.add_option("--batch", batch);
  app.add_option("--threads", threads);
  app.add_option("--repeat", repeat);
  app.add_option("--mean", mean);
  app.add_option("--std", std_dev);
  app.add_option("--quantizer", quantizer);
  app.add_option("--equalize", equalize, "ptq.equalize (unset: the default, on)");
  app.add_option("--size", size, "input size (the bundled Fashion-MNIST models: 32)");
  app.add_option("--resize-short", resize_short, "short side before the center crop; 0: resize the whole image");
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(threads);

  // Decode once; both sides read the same tensors from memory.
  ptq::core::DataSpec spec;
  spec.path = data;
  spec.limit = images;
  spec.batch_size = batch;
  spec.preprocess.mean = {mean};
  spec.preprocess.std = {std_dev};
  spec.preprocess.size = size;
  spec.preprocess.resize_short = resize_short;
  auto source = ptq::core::OpenDataset(spec);
  if (!source.ok()) {
    std::fprintf(stderr, "%s\n", source.status().ToString().c_str());
    return 1;
  }
  ptq::core::InMemoryBatches batches(spec.preprocess);
  std::vector<at::Tensor> tensors;
  ptq::core::Batch one;
  while (*(*source)->Next(&one)) {
    tensors.push_back(at::from_blob(one.data.data(), one.shape, at::kFloat).clone());
    const std::string bytes(reinterpret_cast<const char*>(one.data.data()), one.data.size() * sizeof(float));
    (void)batches.AddTensor(one.shape, bytes, one.labels);
  }

  torch::jit::Module module = torch::jit::load(model);
  module.eval();
  torch::jit::Module frozen = torch::jit::freeze(module);
  torch::NoGradGuard no_grad;
  std::vector<double> baseline;
  for (int r = 0; r < repeat; ++r) {
    baseline.push_back(Seconds([&] {
      for (const at::Tensor& tensor : tensors) frozen.forward({tensor});
    }));
  }
  const double fp32 = Median(baseline);
  std::printf("%s, %d images in batches of %d, %d threads, onednn %s\n", model.c_str(), images, batch, threads,
              onednn_isa.c_str());
  std::printf("| run | seconds (median of %d) | vs fp32 forward |\n|---|---|---|\n", repeat);
  std::printf("| fp32 forward passes (frozen TorchScript) | %.3f | 1.00x |\n", fp32);
  for (bool bias_correction : {false, true}) {
    ptq::core::PtqConfig config;
    config.activation_quantizer = quantizer;
    config.fuse = true;
    config.bias_correction = bias_correction;
    config.equalize = equalize;
    std::vector<double> runs;
    for (int r = 0; r < repeat; ++r) {
      auto session = ptq::core::QuantizationSession::Create(model, config, {});
      if (!session.ok()) {
        std::fprintf(stderr, "%s\n", session.status().ToString().c_str());
        return 1;
      }
      std::unique_ptr<ptq::core::BatchSource> replay = batches.Source();
      absl::Status status;
      runs.push_back(Seconds([&] { status = (*session)->Calibrate(*replay, nullptr, nullptr); }));
      if (!status.ok()) {
        std::fprintf(stderr, "%s\n", status.ToString().c_str());
        return 1;
      }
    }
    const double calibration = Median(runs);
    std::printf("| calibrate, %s, bias correction %s | %.3f | %.2fx |\n", quantizer.c_str(),
                bias_correction ? "on" : "off", calibration, calibration / fp32);
  }
  return 0;
}
