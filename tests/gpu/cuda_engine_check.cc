// The engine's CUDA path, checked on a machine with a GPU and a CUDA build of LibTorch (CI and
// the project's machines have neither; tests/gpu/run_on_device.sh builds this there). One model
// is quantized twice from the same random calibration batches, once on the CPU and once on
// cuda:0, and the two are compared: fp32 logits, simulated int8 logits and their top-1
// agreement, and calibration time.
//
//   cuda_engine_check MODEL.pt [INPUT_SIZE]
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "graph/graph_passes.h"
#include "graph/torchscript_import.h"
#include "quant/calibrator.h"
#include "quant/quant_plan.h"
#include "quant/quantized_model.h"

namespace {

using ptq::core::QuantizedModel;

struct Run {
  at::Tensor fp32, simulated;
  double calibration_seconds = 0;
};

absl::StatusOr<Run> QuantizeOn(const std::string& path, const at::Device& device, const std::vector<at::Tensor>& batches,
                               const at::Tensor& test) {
  absl::StatusOr<ptq::core::Graph> graph = ptq::core::ImportTorchScript(path);
  if (!graph.ok()) return graph.status();
  QuantizedModel model;
  model.fp32 = *std::move(graph);
  if (absl::Status folded = ptq::core::FoldBatchNorms(model.fp32, {}); !folded.ok()) return folded;
  ptq::core::FuseActivations(model.fp32);
  for (ptq::core::Node& node : model.fp32.nodes) {
    for (at::Tensor* tensor : {&node.weight, &node.bias, &node.running_mean, &node.running_var}) {
      if (tensor->defined()) *tensor = tensor->to(device);
    }
  }
  model.se_blocks = ptq::core::FindSeBlocks(model.fp32);
  ptq::core::PlanOptions plan_options;
  plan_options.skip_se_quant = true;
  absl::StatusOr<ptq::core::QuantPlan> plan = ptq::core::PlanQuantization(model.fp32, model.se_blocks, plan_options);
  if (!plan.ok()) return plan.status();
  model.plan = *std::move(plan);

  ptq::core::CalibrationOptions options;
  options.activation.name = "HistQuantizer";
  options.activation.hist_percent = 0.999;
  options.bias_correction = true;
  size_t next = 0;
  ptq::core::BatchStream stream;
  stream.count = static_cast<int64_t>(batches.size());
  stream.next = [&]() -> absl::StatusOr<std::optional<ptq::core::CalibrationBatch>> {
    if (next == batches.size()) return std::optional<ptq::core::CalibrationBatch>();
    const at::Tensor images = batches[next++].to(device);
    return std::optional<ptq::core::CalibrationBatch>(
        {images, std::vector<int32_t>(static_cast<size_t>(images.size(0)), ptq::core::kNoLabel)});
  };
  c10::InferenceMode no_grad;
  const auto start = std::chrono::steady_clock::now();
  if (absl::Status calibrated = ptq::core::Calibrate(model, stream, options, nullptr, nullptr); !calibrated.ok()) {
    return calibrated;
  }
  if (device.is_cuda()) torch::cuda::synchronize();
  Run run;
  run.calibration_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  run.fp32 = ptq::core::RunFp32(model, test.to(device)).cpu();
  run.simulated = ptq::core::RunSimulated(model, test.to(device)).cpu();
  return run;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: cuda_engine_check MODEL.pt [INPUT_SIZE]\n");
    return 2;
  }
  const int64_t size = argc > 2 ? std::stoi(argv[2]) : 224;
  std::printf("LibTorch %s, CUDA available: %d, devices: %d\n", TORCH_VERSION, torch::cuda::is_available(),
              static_cast<int>(torch::cuda::device_count()));
  if (!torch::cuda::is_available()) return 1;
  // PyTorch lets cuDNN convolutions use TF32 by default; PTQ needs a true fp32 reference.
  // PTQ_CHECK_TF32=1 keeps PyTorch's default to show the difference it makes.
  const char* tf32 = std::getenv("PTQ_CHECK_TF32");
  const bool allow_tf32 = tf32 != nullptr && std::string(tf32) == "1";
  at::globalContext().setAllowTF32CuDNN(allow_tf32);
  at::globalContext().setAllowTF32CuBLAS(allow_tf32);
  std::printf("TF32: %s\n", allow_tf32 ? "allowed (PyTorch's default)" : "off");
  at::manual_seed(0);
  std::vector<at::Tensor> batches;
  for (int i = 0; i < 4; ++i) batches.push_back(at::randn({32, 3, size, size}));
  const at::Tensor test = at::randn({256, 3, size, size});

  absl::StatusOr<Run> cpu = QuantizeOn(argv[1], at::kCPU, batches, test);
  // The first CUDA run pays for context and kernel set-up; the second one is timed.
  absl::StatusOr<Run> cuda = QuantizeOn(argv[1], at::Device("cuda:0"), batches, test);
  if (cuda.ok()) cuda = QuantizeOn(argv[1], at::Device("cuda:0"), batches, test);
  if (!cpu.ok() || !cuda.ok()) {
    std::printf("FAILED: cpu %s / cuda %s\n", cpu.status().ToString().c_str(), cuda.status().ToString().c_str());
    return 1;
  }
  const double fp32_diff = (cpu->fp32 - cuda->fp32).abs().max().item<double>();
  const double fp32_scale = cpu->fp32.abs().max().item<double>();
  const double simulated_diff = (cpu->simulated - cuda->simulated).abs().max().item<double>();
  const double agreement =
      100.0 * cpu->simulated.argmax(1).eq(cuda->simulated.argmax(1)).to(at::kFloat).mean().item<double>();
  const double fp32_agreement = 100.0 * cpu->fp32.argmax(1).eq(cuda->fp32.argmax(1)).to(at::kFloat).mean().item<double>();
  std::printf("fp32 logits: max |cpu - cuda| %.3g (max |logit| %.3g), top-1 agreement %.1f%%\n", fp32_diff,
              fp32_scale, fp32_agreement);
  std::printf("simulated int8 logits: max |cpu - cuda| %.3g, top-1 agreement %.1f%%\n", simulated_diff, agreement);
  std::printf("calibration (4 x 32 images, Hist + bias correction): cpu %.2f s, cuda %.2f s\n",
              cpu->calibration_seconds, cuda->calibration_seconds);
  const bool ok = fp32_diff <= 1e-3 * std::max(1.0, fp32_scale) && agreement >= 95.0;
  std::printf("%s\n", ok ? "CUDA PATH OK" : "CUDA PATH DIFFERS");
  return ok ? 0 : 1;
}
