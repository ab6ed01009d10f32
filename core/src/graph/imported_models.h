#ifndef PTQ_CORE_SRC_GRAPH_IMPORTED_MODELS_H_
#define PTQ_CORE_SRC_GRAPH_IMPORTED_MODELS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "graph/graph_ir.h"

namespace ptq::core {

// ImportTorchScript, remembered: jobs that quantize one model with several configurations (a
// quantizer sweep) parse its TorchScript once. torch::jit::load + freeze took 0.085 s of the
// bundled MobileNetV1's 0.18 s calibration step, 0.2 s of MobileNetV2's. A file is known by
// its path, size and modification time, so a rewritten file is imported afresh. The process
// keeps the last 4 graphs while their weights total at most 256 MiB. Callers get a copy whose
// weight tensors are shared with the kept graph: passes build new tensors rather than write
// them in place (ImportedModelsTest runs a whole session and compares the kept graph with a
// fresh import). Thread-safe.
absl::StatusOr<Graph> ImportTorchScriptOnce(const std::string& path);

// How many ImportTorchScriptOnce calls were answered from memory, for tests and logs.
int64_t ImportedModelHits();

}  // namespace ptq::core

#endif  // PTQ_CORE_SRC_GRAPH_IMPORTED_MODELS_H_
