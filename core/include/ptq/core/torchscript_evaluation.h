#ifndef PTQ_CORE_TORCHSCRIPT_EVALUATION_H_
#define PTQ_CORE_TORCHSCRIPT_EVALUATION_H_

#include <atomic>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "ptq/core/dataset.h"
#include "ptq/core/quantization_session.h"

namespace ptq::core {

// A TorchScript file to evaluate under a variant name ("fp32", "int8").
struct TorchScriptVariant {
  std::string variant;
  std::string path;
  // An int8 file's engine ("onednn" or "qnnpack", its job's ptq.backend): it loads and runs
  // under it. Empty for a float file.
  std::string backend;
};

// Runs every file on each batch of `data` (on the CPU, where the quantized kernels are) and
// returns their top-1/top-5. Agreement is measured against the first variant, so put the fp32
// reference first. Progress counts images. NOT_FOUND for a missing file, INVALID_ARGUMENT for
// one LibTorch cannot load or whose output is not [N, classes] logits.
absl::StatusOr<std::vector<VariantAccuracy>> EvaluateTorchScriptFiles(const std::vector<TorchScriptVariant>& variants,
                                                                      BatchSource& data,
                                                                      const ProgressCallback& progress,
                                                                      const std::atomic<bool>* cancelled);

}  // namespace ptq::core

#endif  // PTQ_CORE_TORCHSCRIPT_EVALUATION_H_
