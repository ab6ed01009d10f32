#include "ptq/core/result_directory.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "ptq/common/sha256.h"

namespace ptq::core {
namespace fs = std::filesystem;
namespace {

constexpr char kManifest[] = "MANIFEST";
constexpr char kReport[] = "report.json";

absl::Status WriteText(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write '", path.string(), "'"));
  return absl::OkStatus();
}

nlohmann::json FiniteOrNull(double value) { return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(); }

}  // namespace

std::string ReportJson(const RunReport& report) {
  nlohmann::json metrics = nlohmann::json::array();
  for (const VariantAccuracy& variant : report.metrics) {
    nlohmann::json entry = {{"variant", variant.variant},
                            {"top1", variant.top1},
                            {"top5", variant.top5},
                            {"count", variant.count},
                            {"agreement_top1", variant.agreement_top1},
                            {"images_per_second", variant.images_per_second}};
    if (variant.agreement_with_simulated_top1 >= 0) {
      entry["agreement_with_simulated_top1"] = variant.agreement_with_simulated_top1;
    }
    metrics.push_back(std::move(entry));
  }
  nlohmann::json timings = nlohmann::json::object();
  for (const auto& [name, seconds] : report.timings_seconds) timings[name] = seconds;
  nlohmann::json layers = nlohmann::json::array();
  for (const LayerReport& layer : report.layers) {
    layers.push_back({{"module_path", layer.module_path}, {"op", layer.op}, {"sqnr_db", FiniteOrNull(layer.sqnr_db)}});
  }
  nlohmann::json config = report.config_json.empty() ? nlohmann::json::object()
                                                      : nlohmann::json::parse(report.config_json, nullptr, false);
  const nlohmann::json document = {
      {"format", "ptq-service report v1"},
      {"config", config.is_discarded() ? nlohmann::json(report.config_json) : config},
      {"int8_engine", report.engine},
      {"metrics", std::move(metrics)},
      {"timings_seconds", std::move(timings)},
      {"layer_sqnr", std::move(layers)},
  };
  return document.dump(2);
}

absl::Status PublishResultDirectory(const std::string& staging, const std::string& destination,
                                    const RunReport& report) {
  std::error_code error;
  if (fs::exists(destination, error)) {
    return absl::AlreadyExistsError(absl::StrCat("result directory '", destination, "' already exists"));
  }
  if (absl::Status written = WriteText(fs::path(staging) / kReport, ReportJson(report) + "\n"); !written.ok()) {
    return written;
  }
  std::vector<std::string> files;
  for (auto it = fs::recursive_directory_iterator(staging, error); !error && it != fs::recursive_directory_iterator();
       it.increment(error)) {
    if (it->is_regular_file()) files.push_back(fs::relative(it->path(), staging).string());
  }
  if (error) return absl::InternalError(absl::StrCat("cannot list '", staging, "': ", error.message()));
  std::sort(files.begin(), files.end());
  std::string manifest;
  for (const std::string& file : files) {
    if (file == kManifest) continue;
    absl::StatusOr<std::string> digest = Sha256OfFile((fs::path(staging) / file).string());
    if (!digest.ok()) return digest.status();
    absl::StrAppend(&manifest, *digest, "  ", file, "\n");
  }
  if (absl::Status written = WriteText(fs::path(staging) / kManifest, manifest); !written.ok()) return written;
  fs::rename(staging, destination, error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot move '", staging, "' to '", destination, "': ", error.message()));
  }
  return absl::OkStatus();
}

}  // namespace ptq::core
