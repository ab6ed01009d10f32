#include "ptq/core/torchscript_evaluation.h"

#include <utility>

#include "evaluation.h"

namespace ptq::core {

absl::StatusOr<std::vector<VariantAccuracy>> EvaluateTorchScriptFiles(const std::vector<TorchScriptVariant>& variants,
                                                                      BatchSource& data,
                                                                      const ProgressCallback& progress,
                                                                      const std::atomic<bool>* cancelled) {
  std::vector<EvaluationRunner> runners;
  for (const TorchScriptVariant& variant : variants) {
    absl::StatusOr<EvaluationRunner> runner = TorchScriptFileRunner(variant.variant, variant.path, variant.backend);
    if (!runner.ok()) return runner.status();
    runners.push_back(*std::move(runner));
  }
  return EvaluateRunners(runners, data, at::kCPU, progress, cancelled);
}

}  // namespace ptq::core
