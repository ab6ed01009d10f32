#include "ptq/core/dataset.h"

#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "data/idx_dataset.h"
#include "data/imagenet_folder.h"
#include "data/prefetching_source.h"

namespace ptq::core {
namespace fs = std::filesystem;

absl::StatusOr<DatasetFormat> ParseDatasetFormat(absl::string_view text, absl::string_view field) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower.empty() || lower == "auto") return DatasetFormat::kAuto;
  if (lower == "imagenet") return DatasetFormat::kImageNet;
  if (lower == "idx") return DatasetFormat::kIdx;
  return absl::InvalidArgumentError(
      absl::StrCat(field, " must be \"imagenet\" or \"idx\", got \"", text, "\""));
}

absl::StatusOr<std::unique_ptr<BatchSource>> OpenDataset(const DataSpec& spec) {
  if (absl::Status valid = ValidatePreprocessSpec(spec.preprocess); !valid.ok()) return valid;
  if (spec.batch_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch size must be positive, got ", spec.batch_size));
  }
  DatasetFormat format = spec.format;
  if (format == DatasetFormat::kAuto) {
    std::error_code error;
    format = fs::is_directory(spec.path, error) ? DatasetFormat::kImageNet : DatasetFormat::kIdx;
  }
  std::shared_ptr<const ImageLoader> loader;
  if (format == DatasetFormat::kImageNet) {
    auto opened =
        ImageNetFolderLoader::Open(spec.path, spec.preprocess, spec.num_classes, spec.confine_to, spec.require_labels);
    if (!opened.ok()) return opened.status();
    loader = *std::move(opened);
  } else {
    auto opened = IdxLoader::Open(spec.path, spec.preprocess, spec.num_classes, spec.limit, spec.confine_to);
    if (!opened.ok()) return opened.status();
    loader = *std::move(opened);
  }
  return std::make_unique<PrefetchingSource>(std::move(loader), spec);
}

}  // namespace ptq::core
