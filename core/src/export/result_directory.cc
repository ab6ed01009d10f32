#include "ptq/core/result_directory.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "ptq/common/file_write.h"
#include "ptq/common/sha256.h"

namespace ptq::core {
namespace fs = std::filesystem;
namespace {

constexpr char kManifest[] = "MANIFEST";
constexpr char kReport[] = "report.json";

nlohmann::json FiniteOrNull(double value) { return std::isfinite(value) ? nlohmann::json(value) : nlohmann::json(); }

nlohmann::json MetricsJson(const std::vector<VariantAccuracy>& variants) {
  nlohmann::json metrics = nlohmann::json::array();
  for (const VariantAccuracy& variant : variants) {
    nlohmann::json entry = {{"variant", variant.variant},
                            {"top1", variant.top1},
                            {"top5", variant.top5},
                            {"count", variant.count},
                            {"agreement_top1", variant.agreement_top1},
                            {"images_per_second", variant.images_per_second}};
    if (variant.agreement_with_simulated_top1 >= 0) {
      entry["agreement_with_simulated_top1"] = variant.agreement_with_simulated_top1;
    }
    if (!variant.engine.empty()) entry["engine"] = variant.engine;
    metrics.push_back(std::move(entry));
  }
  return metrics;
}

nlohmann::json ScoreJson(const HeldOutScore& score) {
  nlohmann::json entry = {{"images", score.images},
                          {"agreement_top1", score.agreement_top1},
                          {"logit_sqnr_db", FiniteOrNull(score.logit_sqnr_db)}};
  if (score.labelled > 0) {
    entry["labelled"] = score.labelled;
    entry["top1_drop"] = score.top1_drop;
  }
  return entry;
}

nlohmann::json SensitivityJson(const std::vector<LayerSensitivity>& layers) {
  nlohmann::json rows = nlohmann::json::array();
  for (const LayerSensitivity& layer : layers) {
    rows.push_back({{"module_path", layer.module_path},
                    {"op", layer.op},
                    {"sqnr_db", FiniteOrNull(layer.sqnr_db)},
                    {"mac_percent", layer.mac_percent},
                    {"only_this_int8", ScoreJson(layer.only_this_int8)},
                    {"only_this_float", ScoreJson(layer.only_this_float)}});
  }
  return rows;
}

nlohmann::json BudgetJson(const AccuracyBudgetReport& budget) {
  nlohmann::json entry = {{"met", budget.met},
                          {"all_int8", ScoreJson(budget.all_int8)},
                          {"result", ScoreJson(budget.result)},
                          {"float_layers", budget.float_layers},
                          {"float_mac_percent", budget.float_mac_percent},
                          {"trials", budget.trials}};
  if (budget.min_agreement >= 0) entry["min_agreement"] = budget.min_agreement;
  if (budget.max_top1_drop >= 0) entry["max_top1_drop"] = budget.max_top1_drop;
  return entry;
}

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

std::string ReportJson(const RunReport& report) {
  nlohmann::json timings = nlohmann::json::object();
  for (const auto& [name, seconds] : report.timings_seconds) timings[name] = seconds;
  nlohmann::json layers = nlohmann::json::array();
  for (const LayerReport& layer : report.layers) {
    layers.push_back({{"module_path", layer.module_path}, {"op", layer.op}, {"sqnr_db", FiniteOrNull(layer.sqnr_db)}});
  }
  nlohmann::json config = report.config_json.empty() ? nlohmann::json::object()
                                                      : nlohmann::json::parse(report.config_json, nullptr, false);
  nlohmann::json document = {
      {"format", "ptq-service report v1"},
      {"config", config.is_discarded() ? nlohmann::json(report.config_json) : config},
      {"int8_engine", report.engine},
      {"onednn_isa", report.onednn_isa},
      {"metrics", MetricsJson(report.metrics)},
      {"timings_seconds", std::move(timings)},
      {"layer_sqnr", std::move(layers)},
  };
  // Scores on the held-out calibration images: what the accuracy budget and the sensitivity
  // analysis decided on, apart from any evaluation set.
  if (report.held_out) document["held_out"] = ScoreJson(*report.held_out);
  if (!report.quantizer_trials.empty()) {
    nlohmann::json trials = nlohmann::json::array();
    for (const QuantizerTrial& trial : report.quantizer_trials) {
      trials.push_back({{"quantizer", trial.quantizer}, {"held_out", ScoreJson(trial.held_out)}});
    }
    document["activation_quantizer_choice"] = {{"used", report.activation_quantizer_used},
                                               {"rule", "highest held-out top-1 agreement, then logit SQNR"},
                                               {"trials", std::move(trials)}};
  }
  if (!report.sensitivity.empty()) document["sensitivity"] = SensitivityJson(report.sensitivity);
  if (report.budget) document["accuracy_budget"] = BudgetJson(*report.budget);
  return document.dump(2);
}

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
