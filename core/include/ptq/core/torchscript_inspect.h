#ifndef PTQ_CORE_TORCHSCRIPT_INSPECT_H_
#define PTQ_CORE_TORCHSCRIPT_INSPECT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace ptq::core {

// What a TorchScript file offers, read without running it.
struct TorchScriptSummary {
  std::string forward_schema;   // e.g. "forward(__torch__.Net self, Tensor x) -> Tensor"
  int64_t parameter_count = 0;  // total elements of all parameters
};

// Loads `path` with LibTorch as a TorchScript module on the CPU. NOT_FOUND when the file is
// missing; INVALID_ARGUMENT, with LibTorch's reason, when it is not TorchScript or has no
// forward method, and before LibTorch reads any entry, when the archive is not a well-formed
// ZIP or its entries expand to more than `max_expanded_bytes` together (a few KB of deflated
// zeros can claim gigabytes). Messages name the file as `display_name` (default: the path), so
// a caller holding a file under a temporary name can report the name its user knows.
absl::StatusOr<TorchScriptSummary> InspectTorchScript(const std::string& path, const std::string& display_name,
                                                      uint64_t max_expanded_bytes);

}  // namespace ptq::core

#endif  // PTQ_CORE_TORCHSCRIPT_INSPECT_H_
