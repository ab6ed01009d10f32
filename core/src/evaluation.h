#ifndef PTQ_CORE_SRC_EVALUATION_H_
#define PTQ_CORE_SRC_EVALUATION_H_

#include <ATen/ATen.h>

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ptq/core/dataset.h"
#include "ptq/core/quantization_session.h"

namespace ptq::core {

// Wraps a batch's buffer as a tensor on `device` without copying on the CPU; the tensor owns
// the buffer.
at::Tensor BatchTensor(Batch&& batch, const at::Device& device);

// One model an evaluation runs, under its variant name ("fp32", "int8_simulated", "int8").
struct EvaluationRunner {
  std::string variant;
  // The logits of a batch already on the evaluation's device.
  std::function<at::Tensor(const at::Tensor& input)> run;
  // An int8 file's backend ("onednn", "qnnpack"): each run holds its QuantizedEngineSection
  // and the engine observed is reported. Empty for float models and the simulation.
  std::string backend;
  // The index of an earlier runner this one's top-1 agreement is also reported against
  // (VariantAccuracy::agreement_with_simulated_top1); -1 for none.
  int also_agree_with = -1;
};

// The int8 or float TorchScript file at `path` as a runner on the CPU (an int8 file loads
// inside `backend`'s section, which packs its weights). NOT_FOUND when the file is missing,
// INVALID_ARGUMENT when LibTorch cannot load it.
absl::StatusOr<EvaluationRunner> TorchScriptFileRunner(const std::string& variant, const std::string& path,
                                                       const std::string& backend);

// Every runner on each batch of `data` (moved to `device`): top-1/top-5 on the labelled images,
// top-1 agreement with the first runner (the fp32 reference) and images/s. INVALID_ARGUMENT
// when a runner's output is not [N, classes] logits, FAILED_PRECONDITION for non-finite logits
// or data without images, CANCELLED once `cancelled` is set; LibTorch errors become statuses.
// Progress counts images.
absl::StatusOr<std::vector<VariantAccuracy>> EvaluateRunners(const std::vector<EvaluationRunner>& runners,
                                                             BatchSource& data, const at::Device& device,
                                                             const ProgressCallback& progress,
                                                             const std::atomic<bool>* cancelled);

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_EVALUATION_H_
