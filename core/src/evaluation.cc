#include "evaluation.h"

#include <torch/script.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "export/quantized_engine.h"
#include "ptq/core/metrics.h"
#include "torch_errors.h"

namespace ptq::core {
namespace {

std::optional<QuantizedEngineSection> SectionFor(const std::string& backend) {
  if (backend.empty()) return std::nullopt;
  return std::optional<QuantizedEngineSection>(std::in_place, backend);
}

// What one runner has measured so far.
struct RunnerTally {
  AccuracyMeter accuracy;
  AgreementMeter agreement;       // with the first runner
  AgreementMeter also_agreement;  // with also_agree_with
  double seconds = 0;
  std::set<std::string> engines;
};

}  // namespace

at::Tensor BatchTensor(Batch&& batch, const at::Device& device) {
  auto owner = std::make_shared<std::vector<float>>(std::move(batch.data));
  at::Tensor tensor = at::from_blob(owner->data(), batch.shape, [owner](void*) {}, at::kFloat);
  return tensor.to(device);
}

absl::StatusOr<EvaluationRunner> TorchScriptFileRunner(const std::string& variant, const std::string& path,
                                                       const std::string& backend) {
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    return absl::NotFoundError(absl::StrCat(variant, " model file '", path, "' does not exist"));
  }
  auto module = std::make_shared<torch::jit::Module>();
  try {
    const std::optional<QuantizedEngineSection> engine = SectionFor(backend);
    *module = torch::jit::load(path, torch::kCPU);
    module->eval();
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(variant, " model file '", path, "' does not load: ", FirstLine(e.what_without_backtrace())));
  }
  EvaluationRunner runner;
  runner.variant = variant;
  runner.backend = backend;
  runner.run = [module](const at::Tensor& input) { return module->forward({input.to(at::kCPU)}).toTensor(); };
  return runner;
}

absl::StatusOr<std::vector<VariantAccuracy>> EvaluateRunners(const std::vector<EvaluationRunner>& runners,
                                                             BatchSource& data, const at::Device& device,
                                                             const ProgressCallback& progress,
                                                             const std::atomic<bool>* cancelled) {
  if (runners.empty()) return absl::InvalidArgumentError("no model variant to evaluate");
  return GuardTorch<std::vector<VariantAccuracy>>("evaluation", [&]() -> absl::StatusOr<std::vector<VariantAccuracy>> {
    torch::NoGradGuard no_grad;
    std::vector<RunnerTally> tallies(runners.size());
    std::vector<at::Tensor> logits(runners.size());
    int64_t images = 0;
    Batch batch;
    while (true) {
      if (cancelled != nullptr && cancelled->load()) return absl::CancelledError("evaluation cancelled");
      absl::StatusOr<bool> more = data.Next(&batch);
      if (!more.ok()) return more.status();
      if (!*more) break;
      const std::vector<int32_t> labels = batch.labels;
      const int64_t n = batch.size();
      const at::Tensor input = BatchTensor(std::move(batch), device);
      for (size_t i = 0; i < runners.size(); ++i) {
        const EvaluationRunner& runner = runners[i];
        RunnerTally& tally = tallies[i];
        {
          const std::optional<QuantizedEngineSection> engine = SectionFor(runner.backend);
          const auto start = std::chrono::steady_clock::now();
          logits[i] = runner.run(input).to(at::kCPU, at::kFloat).contiguous();
          tally.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          if (engine) tally.engines.insert(CurrentQuantizedEngine());
        }
        const at::Tensor& out = logits[i];
        if (out.dim() != 2 || out.size(0) != n) {
          return absl::InvalidArgumentError(absl::StrCat(runner.variant, " model output has shape ",
                                                         c10::str(out.sizes()), ", expected [", n, ", classes]"));
        }
        const int64_t classes = out.size(1);
        tally.accuracy.Add(out.data_ptr<float>(), n, classes, labels.data());
        if (absl::Status finite = RequireFiniteLogits(tally.accuracy, runner.variant); !finite.ok()) return finite;
        tally.agreement.Add(logits[0].data_ptr<float>(), out.data_ptr<float>(), n, classes);
        if (runner.also_agree_with >= 0) {
          tally.also_agreement.Add(logits[static_cast<size_t>(runner.also_agree_with)].data_ptr<float>(),
                                   out.data_ptr<float>(), n, classes);
        }
      }
      images += n;
      if (progress) progress(images, data.num_images());
    }
    if (images == 0) return absl::FailedPreconditionError("evaluation data has no images");
    std::vector<VariantAccuracy> result;
    for (size_t i = 0; i < runners.size(); ++i) {
      const RunnerTally& tally = tallies[i];
      result.push_back({runners[i].variant, tally.accuracy.top1(), tally.accuracy.top5(), tally.accuracy.count(),
                        tally.agreement.percent(), images / tally.seconds,
                        runners[i].also_agree_with >= 0 ? tally.also_agreement.percent() : -1,
                        absl::StrJoin(tally.engines, "+")});
    }
    return result;
  });
}

}  // namespace ptq::core
