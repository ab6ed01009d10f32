#include "ptq/core/torchscript_inspect.h"

#include <torch/script.h>

#include <filesystem>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "torch_errors.h"

namespace ptq::core {
namespace {

absl::Status NotTorchScript(const std::string& name, const std::string& reason) {
  return absl::InvalidArgumentError(absl::StrCat(
      "model file '", name, "' is not a TorchScript file LibTorch can load: ", FirstLine(reason)));
}

}  // namespace

absl::StatusOr<TorchScriptSummary> InspectTorchScript(const std::string& path,
                                                      const std::string& display_name) {
  const std::string& name = display_name.empty() ? path : display_name;
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    return absl::NotFoundError(absl::StrCat("model file '", name, "' does not exist"));
  }
  try {
    torch::jit::Module module = torch::jit::load(path, torch::kCPU);
    auto forward = module.find_method("forward");
    if (!forward) {
      return absl::InvalidArgumentError(
          absl::StrCat("model file '", name, "' is TorchScript but has no forward() method"));
    }
    TorchScriptSummary summary;
    std::ostringstream schema;
    schema << forward->function().getSchema();
    summary.forward_schema = schema.str();
    for (const at::Tensor& parameter : module.parameters(/*recurse=*/true)) {
      summary.parameter_count += parameter.numel();
    }
    return summary;
  } catch (const c10::Error& e) {
    return NotTorchScript(name, e.what_without_backtrace());
  } catch (const std::exception& e) {
    return NotTorchScript(name, e.what());
  }
}

}  // namespace ptq::core
