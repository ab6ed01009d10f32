#include "ptq/core/torchscript_evaluation.h"

#include <torch/script.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "export/quantized_engine.h"
#include "ptq/core/metrics.h"
#include "torch_errors.h"

namespace ptq::core {
namespace {

std::optional<QuantizedEngineSection> EngineFor(const TorchScriptVariant& variant) {
  if (variant.backend.empty()) return std::nullopt;
  return std::optional<QuantizedEngineSection>(std::in_place, variant.backend);
}

}  // namespace

absl::StatusOr<std::vector<VariantAccuracy>> EvaluateTorchScriptFiles(const std::vector<TorchScriptVariant>& variants,
                                                                      BatchSource& data,
                                                                      const ProgressCallback& progress,
                                                                      const std::atomic<bool>* cancelled) {
  if (variants.empty()) return absl::InvalidArgumentError("no model variant to evaluate");
  std::vector<torch::jit::Module> modules;
  for (const TorchScriptVariant& variant : variants) {
    std::error_code error;
    if (!std::filesystem::is_regular_file(variant.path, error)) {
      return absl::NotFoundError(absl::StrCat(variant.variant, " model file '", variant.path, "' does not exist"));
    }
    try {
      const std::optional<QuantizedEngineSection> engine = EngineFor(variant);
      modules.push_back(torch::jit::load(variant.path, torch::kCPU));
      modules.back().eval();
    } catch (const c10::Error& e) {
      return absl::InvalidArgumentError(absl::StrCat(variant.variant, " model file '", variant.path,
                                                     "' does not load: ", FirstLine(e.what_without_backtrace())));
    }
  }
  return GuardTorch<std::vector<VariantAccuracy>>("evaluation", [&]() -> absl::StatusOr<std::vector<VariantAccuracy>> {
    torch::NoGradGuard no_grad;
    std::vector<AccuracyMeter> accuracy(variants.size());
    std::vector<AgreementMeter> agreement(variants.size());
    std::vector<double> seconds(variants.size(), 0);
    std::vector<std::set<std::string>> engines(variants.size());
    int64_t images = 0;
    Batch batch;
    while (true) {
      if (cancelled != nullptr && cancelled->load()) return absl::CancelledError("evaluation cancelled");
      absl::StatusOr<bool> more = data.Next(&batch);
      if (!more.ok()) return more.status();
      if (!*more) break;
      const at::Tensor input = at::from_blob(batch.data.data(), batch.shape, at::kFloat);
      const int64_t n = batch.size();
      at::Tensor reference;
      for (size_t i = 0; i < modules.size(); ++i) {
        const std::optional<QuantizedEngineSection> engine = EngineFor(variants[i]);
        const auto start = std::chrono::steady_clock::now();
        const at::Tensor logits = modules[i].forward({input}).toTensor().to(at::kFloat).contiguous();
        seconds[i] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (engine) engines[i].insert(CurrentQuantizedEngine());
        if (logits.dim() != 2 || logits.size(0) != n) {
          return absl::InvalidArgumentError(absl::StrCat(variants[i].variant, " model output has shape ",
                                                         c10::str(logits.sizes()), ", expected [", n, ", classes]"));
        }
        if (i == 0) reference = logits;
        accuracy[i].Add(logits.data_ptr<float>(), n, logits.size(1), batch.labels.data());
        if (absl::Status finite = RequireFiniteLogits(accuracy[i], variants[i].variant); !finite.ok()) return finite;
        agreement[i].Add(reference.data_ptr<float>(), logits.data_ptr<float>(), n, logits.size(1));
      }
      images += n;
      if (progress) progress(images, data.num_images());
    }
    if (images == 0) return absl::FailedPreconditionError("evaluation data has no images");
    std::vector<VariantAccuracy> result;
    for (size_t i = 0; i < variants.size(); ++i) {
      result.push_back({variants[i].variant, accuracy[i].top1(), accuracy[i].top5(), accuracy[i].count(),
                        agreement[i].percent(), images / seconds[i], -1, absl::StrJoin(engines[i], "+")});
    }
    return result;
  });
}

}  // namespace ptq::core
