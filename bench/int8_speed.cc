// Inference speed in one run, batch 32, 224 x 224, same machine and threads: the fp32 model
// (frozen TorchScript) against our int8 TorchScript (onednn), and PyTorch's own FX int8
// (bench/fx_int8_speed.py, Debian's python3-torch) for the torchvision models.
//
//   build/bench/bench_int8_speed [--threads 2] [--iterations 2] [--rounds 5] [--models-dir DIR]
//
// Models: the shared MobileNetV1-0.25 (when ../shared is present) and torchvision's
// MobileNetV3-large with random weights (tests/fixtures/make_torchvision_models.py writes it;
// --models-dir points at that output, default build/tests/models). Targets (issue 5): our
// int8 >= 2.5x fp32, >= 1.0x PyTorch FX int8.
#include <ATen/Parallel.h>
#include <torch/script.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <unistd.h>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "ptq/core/devices.h"
#include "ptq/core/in_memory_batches.h"
#include "ptq/core/quantization_session.h"
#include "steady_allocator.h"

namespace {

namespace fs = std::filesystem;

// Median images/s of each module over `rounds` rounds of `iterations` forwards that time the
// modules in turn: a slow moment of the shared 2-core machine lands on all of them alike
// (single back-to-back timings moved the int8/fp32 ratio by 30% between runs).
std::vector<double> ImagesPerSecond(const std::vector<torch::jit::Module*>& modules, const at::Tensor& batch,
                                    int iterations, int rounds) {
  torch::NoGradGuard no_grad;
  for (torch::jit::Module* module : modules) module->forward({batch});  // warm-up: primitives, reorders
  std::vector<std::vector<double>> rates(modules.size());
  for (int round = 0; round < rounds; ++round) {
    for (size_t m = 0; m < modules.size(); ++m) {
      const auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < iterations; ++i) modules[m]->forward({batch});
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      rates[m].push_back(batch.size(0) * iterations / seconds);
    }
  }
  std::vector<double> medians;
  for (std::vector<double>& rate : rates) {
    std::sort(rate.begin(), rate.end());
    medians.push_back(rate[rate.size() / 2]);
  }
  return medians;
}

// Our int8 file for `model`, calibrated on `batch` (speed does not depend on the data).
std::string ExportInt8(const std::string& model, const at::Tensor& batch, const fs::path& directory) {
  ptq::core::PtqConfig config;
  config.fuse = true;
  config.activation_quantizer = "MSEQuantizer";
  auto session = ptq::core::QuantizationSession::Create(model, config, {});
  if (!session.ok()) throw std::runtime_error(session.status().ToString());
  ptq::core::PreprocessSpec spec;
  spec.size = 224;
  ptq::core::InMemoryBatches data(spec);
  const std::string bytes(reinterpret_cast<const char*>(batch.data_ptr<float>()), batch.numel() * sizeof(float));
  (void)data.AddTensor(batch.sizes().vec(), bytes, {});
  if (absl::Status status = (*session)->Calibrate(*data.Source(), nullptr, nullptr); !status.ok()) {
    throw std::runtime_error(status.ToString());
  }
  if (absl::Status status = (*session)->WriteArtifacts(directory.string()); !status.ok()) {
    throw std::runtime_error(status.ToString());
  }
  return (directory / "int8_infer" / "model.pt").string();
}

}  // namespace

int main(int argc, char** argv) {
  const std::string onednn_isa = ptq::core::CapOnednnBelowAmx();  // as ptq-server runs
  ptq::bench::UseSteadyStateAllocator();
  int threads = 2, iterations = 2, rounds = 5;
  std::string models_dir = PTQ_TEST_MODELS_DIR;
  CLI::App app{"int8 inference speed"};
  app.add_option("--threads", threads);
  app.add_option("--iterations", iterations, "forwards per timed round");
  app.add_option("--rounds", rounds, "rounds (each times every model in turn); medians are reported");
  app.add_option("--models-dir", models_dir);
  CLI11_PARSE(app, argc, argv);
  at::set_num_threads(threads);
  at::manual_seed(0);
  const at::Tensor batch = at::randn({32, 3, 224, 224});

  struct Case {
    std::string name, path, torchvision_name;
  };
  std::vector<Case> cases;
  const fs::path shared_model = PTQ_SHARED_DIR "/models/mobilenet_v1_0.25_224_keras_imagenet.pt";
  if (fs::exists(shared_model)) cases.push_back({"MobileNetV1-0.25 (shared, ImageNet)", shared_model.string(), ""});
  cases.push_back({"MobileNetV3-large (torchvision)", (fs::path(models_dir) / "mobilenet_v3_large.pt").string(),
                   "mobilenet_v3_large"});

  std::printf("batch 32, 224x224, %d threads, onednn %s, images/s\n\n", threads, onednn_isa.c_str());
  std::printf("| model | fp32 | our int8 | int8 / fp32 | PyTorch FX fp32 | PyTorch FX int8 | ours / FX int8 |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  for (const Case& c : cases) {
    const fs::path scratch = fs::temp_directory_path() / ("ptq-bench-" + std::to_string(::getpid()));
    torch::jit::Module source = torch::jit::load(c.path);
    source.eval();
    torch::jit::Module fp32 = torch::jit::freeze(source);
    torch::jit::Module ours = torch::jit::load(ExportInt8(c.path, batch, scratch));
    const std::vector<double> rates = ImagesPerSecond({&fp32, &ours}, batch, iterations, rounds);
    const double fp32_rate = rates[0], int8_rate = rates[1];
    std::string fx_fp32 = "-", fx_int8 = "-", ratio = "-";
    if (!c.torchvision_name.empty()) {
      // PyTorch FX's int8 runs on the same onednn instruction set as ours.
      const std::string command = "ONEDNN_MAX_CPU_ISA=" + absl::AsciiStrToUpper(onednn_isa) +
                                  " /usr/bin/python3 " PTQ_BENCH_DIR "/fx_int8_speed.py " + c.torchvision_name +
                                  " 32 " + std::to_string(threads) + " " + std::to_string(iterations * rounds);
      if (FILE* pipe = popen(command.c_str(), "r")) {
        double fx_fp32_rate = 0, fx_int8_rate = 0;
        if (std::fscanf(pipe, "%lf %lf", &fx_fp32_rate, &fx_int8_rate) == 2) {
          fx_fp32 = std::to_string(static_cast<int>(fx_fp32_rate));
          fx_int8 = std::to_string(static_cast<int>(fx_int8_rate));
          ratio = std::to_string(int8_rate / fx_int8_rate).substr(0, 4) + "x";
        }
        pclose(pipe);
      }
    }
    std::printf("| %s | %.0f | %.0f | %.2fx | %s | %s | %s |\n", c.name.c_str(), fp32_rate, int8_rate,
                int8_rate / fp32_rate, fx_fp32.c_str(), fx_int8.c_str(), ratio.c_str());
    std::fflush(stdout);
    fs::remove_all(scratch);
  }
  return 0;
}
