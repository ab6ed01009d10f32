#include "ptq/core/torchscript_inspect.h"

#include <torch/script.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "graph/operator_allow_list.h"
#include "graph/zip_directory.h"
#include "torch_errors.h"

namespace ptq::core {
namespace {

absl::Status NotTorchScript(const std::string& name, const std::string& reason) {
  return absl::InvalidArgumentError(absl::StrCat(
      "model file '", name, "' is not a TorchScript file LibTorch can load: ", FirstLine(reason)));
}

absl::Status CheckExpandedSize(const std::string& path, const std::string& name, uint64_t max_expanded_bytes) {
  std::ifstream file(path, std::ios::binary);
  std::error_code error;
  const uint64_t file_size = std::filesystem::file_size(path, error);
  if (!file || error) return absl::NotFoundError(absl::StrCat("model file '", name, "' cannot be read"));
  const ZipReader read = [&file](uint64_t offset, uint64_t size) {
    std::string bytes(size, '\0');
    file.clear();
    file.seekg(static_cast<std::streamoff>(offset));
    file.read(bytes.data(), static_cast<std::streamsize>(size));
    bytes.resize(static_cast<size_t>(std::max<std::streamsize>(0, file.gcount())));
    return bytes;
  };
  absl::StatusOr<std::vector<ZipEntry>> entries = ReadZipDirectory(read, file_size);
  if (!entries.ok()) return NotTorchScript(name, std::string(entries.status().message()));
  uint64_t expanded = 0;
  const ZipEntry* largest = nullptr;
  for (const ZipEntry& entry : *entries) {
    expanded += std::min(entry.uncompressed_size, max_expanded_bytes + 1);  // no overflow
    if (largest == nullptr || entry.uncompressed_size > largest->uncompressed_size) largest = &entry;
  }
  if (expanded > max_expanded_bytes) {
    return absl::InvalidArgumentError(absl::StrCat("model file '", name, "' expands to more than ", max_expanded_bytes,
                                                   " bytes (its entry '", largest->name, "' alone to ",
                                                   largest->uncompressed_size, "), the most a model may hold"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<TorchScriptSummary> InspectTorchScript(const std::string& path, const std::string& display_name,
                                                      uint64_t max_expanded_bytes) {
  const std::string& name = display_name.empty() ? path : display_name;
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    return absl::NotFoundError(absl::StrCat("model file '", name, "' does not exist"));
  }
  if (absl::Status bounded = CheckExpandedSize(path, name, max_expanded_bytes); !bounded.ok()) return bounded;
  if (absl::Status inert = CheckNoCodeRunsOnLoad(path, name); !inert.ok()) return inert;
  try {
    torch::jit::Module module = torch::jit::load(path, torch::kCPU);
    auto forward = module.find_method("forward");
    if (!forward) {
      return absl::InvalidArgumentError(
          absl::StrCat("model file '", name, "' is TorchScript but has no forward() method"));
    }
    if (absl::Status allowed = CheckOperatorsAllowed(module, name); !allowed.ok()) return allowed;
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
