#include "ptq/core/result_directory.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "ptq/common/file_write.h"
#include "ptq/common/sha256.h"
#include "export/report_json.h"

namespace ptq::core {
namespace fs = std::filesystem;
namespace {

constexpr char kManifest[] = "MANIFEST";
constexpr char kReport[] = "report.json";

// Writes `text` next to `path` and renames it into place.
absl::Status ReplaceText(const fs::path& path, const std::string& text) {
  const fs::path temporary = path.string() + ".tmp";
  if (absl::Status written = WriteFileContents(temporary, text); !written.ok()) return written;
  std::error_code error;
  fs::rename(temporary, path, error);
  if (error) return absl::InternalError(absl::StrCat("cannot replace '", path.string(), "': ", error.message()));
  return absl::OkStatus();
}

// MANIFEST's text for every file under `directory` but MANIFEST itself.
absl::StatusOr<std::string> ManifestText(const fs::path& directory) {
  std::error_code error;
  std::vector<std::string> files;
  for (auto it = fs::recursive_directory_iterator(directory, error); !error && it != fs::recursive_directory_iterator();
       it.increment(error)) {
    if (it->is_regular_file()) files.push_back(fs::relative(it->path(), directory).string());
  }
  if (error) return absl::InternalError(absl::StrCat("cannot list '", directory.string(), "': ", error.message()));
  std::sort(files.begin(), files.end());
  std::string manifest;
  for (const std::string& file : files) {
    if (file == kManifest) continue;
    absl::StatusOr<std::string> digest = Sha256OfFile((directory / file).string());
    if (!digest.ok()) return digest.status();
    absl::StrAppend(&manifest, *digest, "  ", file, "\n");
  }
  return manifest;
}

}  // namespace

absl::Status PublishResultDirectory(const std::string& staging, const std::string& destination,
                                    const RunReport& report) {
  std::error_code error;
  if (fs::exists(destination, error)) {
    return absl::AlreadyExistsError(absl::StrCat("result directory '", destination, "' already exists"));
  }
  if (absl::Status written = WriteFileContents(fs::path(staging) / kReport, ReportJson(report) + "\n"); !written.ok()) {
    return written;
  }
  absl::StatusOr<std::string> manifest = ManifestText(staging);
  if (!manifest.ok()) return manifest.status();
  if (absl::Status written = WriteFileContents(fs::path(staging) / kManifest, *manifest); !written.ok()) return written;
  fs::rename(staging, destination, error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot move '", staging, "' to '", destination, "': ", error.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ManifestEntry>> ReadManifest(const std::string& directory) {
  const fs::path root(directory);
  std::ifstream in(root / kManifest);
  if (!in) return absl::NotFoundError(absl::StrCat("'", directory, "' has no ", kManifest));
  std::vector<ManifestEntry> entries;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const size_t gap = line.find("  ");
    if (gap == std::string::npos || !IsSha256Hex(line.substr(0, gap))) {
      return absl::DataLossError(absl::StrCat(kManifest, " line ", number, " of '", directory, "' is malformed"));
    }
    ManifestEntry entry{line.substr(gap + 2), line.substr(0, gap), 0};
    std::error_code error;
    entry.size_bytes = static_cast<int64_t>(fs::file_size(root / entry.path, error));
    if (error) {
      return absl::DataLossError(absl::StrCat("'", entry.path, "' is listed in ", kManifest, " but missing"));
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

absl::Status AddEvaluationToReport(const std::string& directory, const std::string& dataset,
                                   const std::vector<VariantAccuracy>& metrics) {
  const fs::path root(directory);
  std::ifstream in(root / kReport);
  nlohmann::json report = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (report.is_discarded() || !report.is_object()) {
    return absl::DataLossError(absl::StrCat("'", (root / kReport).string(), "' is not a JSON object"));
  }
  report["evaluations"].push_back({{"dataset", dataset}, {"metrics", MetricsJson(metrics)}});
  if (absl::Status written = ReplaceText(root / kReport, report.dump(2) + "\n"); !written.ok()) return written;
  absl::StatusOr<std::string> manifest = ManifestText(root);
  if (!manifest.ok()) return manifest.status();
  return ReplaceText(root / kManifest, *manifest);
}

}  // namespace ptq::core
